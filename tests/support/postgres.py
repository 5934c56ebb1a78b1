"""A private PostgreSQL cluster in a temp dir, on a free loopback port and a unix socket beside it.

initdb refuses to run as root, so as root the cluster belongs to a system user made on demand.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

from app.db.grants import DbRoles, apply_grants
from app.db.migrate import upgrade
from tests.support.ports import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "pboxtest"

# Durability does not matter for a throwaway cluster; speed does.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER], check=True
        )
    return ["runuser", "-u", OS_USER, "--"]


class PostgresCluster:
    def __init__(self, settings: dict[str, str] | None = None, base: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pbox-pg-", dir=base))
        self.data = self.dir / "data"
        self.port = free_port()
        self.settings = {**FAST, **(settings or {})}
        self._prefix = _as_user()

    @property
    def url(self) -> str:
        """SQLAlchemy URL for the superuser on the `postgres` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._prefix, *args], check=True, capture_output=True)

    def start(self) -> "PostgresCluster":
        if self._prefix:
            shutil.chown(self.dir, OS_USER)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        return self.resume()

    def resume(self) -> "PostgresCluster":
        """Start the server (again, after `pause`) on the same data, port and socket."""
        opts = " ".join(
            f"-c {k}={v}"
            for k, v in {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.dir),
                **self.settings,
            }.items()
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def pause(self) -> None:
        """Stop the server as an outage would (its clients' connections drop), keeping the data: a fast
        shutdown, as an immediate one would lose the last commits of this cluster (synchronous_commit off)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class AppDatabase:
    """A database on a private cluster set up as a deployment sets it up: the roles of the
    postgresql role (owner, runtime, personal-data group), the database owned by the owner,
    migrated by the owner, then the runtime roles' grants (app/db/grants.py) applied by the owner."""

    def __init__(self, cluster: PostgresCluster, name: str, roles: DbRoles | None = None) -> None:
        self.cluster, self.name, self.roles = cluster, name, roles or DbRoles()

    def url(self, role: str) -> str:
        return f"postgresql+psycopg://{role}@127.0.0.1:{self.cluster.port}/{self.name}"

    @property
    def superuser_url(self) -> str:
        return self.url("postgres")

    @property
    def owner_url(self) -> str:
        return self.url(self.roles.owner)

    @property
    def runtime_url(self) -> str:
        """What app-web and app-worker connect as: rows only, no DDL, the audit log append-only."""
        return self.url(self.roles.runtime)

    def create(self) -> "AppDatabase":
        r = self.roles
        engine = sa.create_engine(self.cluster.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            existing = set(conn.execute(sa.text("SELECT rolname FROM pg_roles")).scalars())
            for role, attrs in ((r.owner, "LOGIN"), (r.runtime, "LOGIN"), (r.pii, "NOLOGIN")):
                if role not in existing:
                    conn.execute(sa.text(f"CREATE ROLE {role} {attrs} NOSUPERUSER NOCREATEDB NOCREATEROLE"))
            conn.execute(sa.text(f"GRANT {r.pii} TO {r.runtime}"))
            conn.execute(sa.text(f"CREATE DATABASE {self.name} OWNER {r.owner}"))
        engine.dispose()
        upgrade(self.owner_url)
        apply_grants(self.owner_url, r)
        return self
