"""A private PostgreSQL cluster in a temp dir, on a free loopback port and a unix socket beside it.

initdb refuses to run as root, so as root the cluster belongs to a system user made on demand.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from app.devtools.ports import free_port

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

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
