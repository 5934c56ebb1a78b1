"""Alembic driven from code: the config is built here, so no alembic.ini has to ship with the wheel."""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def main() -> None:
    """`python -m app.db.migrate`: bring the configured database to the latest schema."""
    from app.settings import get_settings

    upgrade(get_settings().database_url)


if __name__ == "__main__":
    main()
