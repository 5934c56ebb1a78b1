"""Alembic driven from code: the config is built here, so no alembic.ini has to ship with the wheel."""

import argparse
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


def main(argv: list[str] | None = None) -> None:
    """`python -m app.db.migrate`: bring the configured database (as its owner) to the latest schema.
    With `--grant`: give the runtime and personal-data roles their privileges instead, printing
    `changed` or `unchanged` (the app role runs it after every migration)."""
    from app.db.grants import DbRoles, apply_grants
    from app.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m app.db.migrate")
    parser.add_argument("--grant", action="store_true", help="apply the runtime roles' privileges")
    parser.add_argument("--runtime-role", default=DbRoles.runtime)
    parser.add_argument("--pii-role", default=DbRoles.pii)
    args = parser.parse_args(argv)
    url = get_settings().database_url
    if args.grant:
        # Run as the owner (the URL's role): it owns every object it grants on.
        changed = apply_grants(url, DbRoles(runtime=args.runtime_role, pii=args.pii_role))
        print("changed" if changed else "unchanged")
    else:
        upgrade(url)


if __name__ == "__main__":
    main()
