"""Several app nodes (ministry, provinces, cities) as real processes on one machine, for tests and
benchmarks: each its own database on one PostgreSQL cluster, its own bucket on one MinIO, HTTPS with
certificates of a throwaway CA, an Ed25519 or SM2 signing key (`signing_algorithms`, by node; the
crypto suite for all), app-web and app-worker as subprocesses."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import sqlalchemy as sa

from app.db.migrate import upgrade
from app.security.auditlog import AuditLog
from app.security.fieldcrypt import FieldCipher
from app.security.rbac import Role
from app.security.signing import Signer, new_private_pem
from app.services import roster, staff
from tests.support.pki import TestCA
from tests.support.ports import free_port

ADMIN_PASSWORD = "Str0ng-Passw0rd!"


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; its last value is returned."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what} (last value {value!r})")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


@dataclass
class Node:
    name: str
    role: str
    region_code: str
    dir: Path
    db_url: str
    port: int
    signer_file: Path
    cert: Path
    key: Path
    extra: dict[str, Any] = field(default_factory=dict)
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    token: str | None = None
    audit_key: str | None = None  # hex; the node's keyed audit chain (set by Federation)
    crypto_suite: str = "standard"  # set by Federation

    def audit_log(self) -> AuditLog:
        """The node's audit log as its processes write it (app.runtime.audit_log)."""
        return AuditLog("sm3" if self.crypto_suite == "sm" else "sha256",
                        bytes.fromhex(self.audit_key) if self.audit_key else None)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.dir / "config.toml"

    def _spawn(self, module: str, log: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PBOX_CONFIG": str(self.config_file)}
        with (self.dir / log).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def start_web(self, ca: Path) -> None:
        self.web = self._spawn("app.server", "web.log")

        def ready() -> bool:
            assert self.web is not None
            if self.web.poll() is not None:
                raise RuntimeError(f"{self.name} app-web exited: see {self.dir / 'web.log'}")
            try:
                return httpx.get(f"{self.url}/readyz", verify=str(ca), timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        # generous: on a loaded 2-core machine a fresh interpreter importing the app can take a minute
        wait_until(ready, 240, f"{self.name} app-web")

    def start_worker(self) -> None:
        self.worker = self._spawn("app.worker", "worker.log")

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes] | None, kill: bool) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # uvicorn waits up to 30 s for idle TLS keep-alive peers to answer close_notify
            proc.kill()
            proc.wait(timeout=10)

    def stop_web(self, kill: bool = False) -> None:
        self._stop(self.web, kill)
        self.web = None

    def stop_worker(self, kill: bool = False) -> None:
        self._stop(self.worker, kill)
        self.worker = None

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.db_url, pool_size=1, max_overflow=2)

    def import_roster(self, rows: list[dict[str, Any]]) -> roster.ImportReport:
        """What the operator's `app-admin roster import` does on this node with a file of these rows."""
        eng = self.engine()
        try:
            with eng.begin() as conn, sa.orm.Session(bind=conn) as s:
                audit = self.audit_log()
                report = roster.import_rows(s, audit, list(enumerate(rows, start=2)), "devtools")
                s.flush()
        finally:
            eng.dispose()
        if report.bad:
            raise ValueError(f"roster rows refused: {report.bad}")
        return report


class Federation:
    """`layout`: (name, role, region code, [peer names]) for each node."""

    def __init__(
        self,
        pg_url: str,
        s3: dict[str, str],
        base: Path,
        layout: list[tuple[str, str, str, list[str]]],
        exchange: dict[str, Any] | None = None,
        crypto_suite: str = "standard",
        signing_algorithms: dict[str, str] | None = None,
    ) -> None:
        self.base = base
        self.crypto_suite = crypto_suite
        self.ca = TestCA(base / "pki")
        self.s3 = s3
        self.exchange = {
            "poll_seconds": 0.2,
            "backoff_base_seconds": 0.2,
            "backoff_max_seconds": 2.0,
            "reconcile_interval_seconds": 3600.0,
            "statistics_interval_seconds": 3600.0,
            **(exchange or {}),
        }
        self.layout = {name: peers for name, _, _, peers in layout}
        self.nodes: dict[str, Node] = {}
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        for name, role, region, _ in layout:
            dbname = "fed_" + name.replace("-", "_")
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {dbname}"))
                conn.execute(sa.text(f"CREATE DATABASE {dbname}"))
            url = pg_url.rsplit("/", 1)[0] + "/" + dbname
            upgrade(url)
            d = base / name
            d.mkdir(parents=True, exist_ok=True)
            signer_file = d / "signing.pem"
            signer_file.write_bytes(new_private_pem((signing_algorithms or {}).get(name, "ed25519")))
            cert, key = self.ca.issue(name)
            self.nodes[name] = Node(name, role, region, d, url, free_port(), signer_file, cert, key,
                                    crypto_suite=crypto_suite)
        admin.dispose()
        self.secret_key, self.field_key = secrets.token_hex(32), secrets.token_hex(32)
        self.audit_key = secrets.token_hex(32)  # keyed audit chains, as deployed
        for node in self.nodes.values():
            node.audit_key = self.audit_key
            self.write_config(node)

    def public_key(self, name: str) -> str:
        return Signer.from_file(self.nodes[name].signer_file).public_pem()

    def write_config(
        self, node: Node, peer_keys: dict[str, str] | None = None, exchange: dict[str, Any] | None = None
    ) -> None:
        """The node's TOML settings; `peer_keys` overrides the public key configured for a peer,
        `exchange` adds or overrides exchange settings of this node."""
        top = {
            "node_role": node.role,
            "region_code": node.region_code,
            "database_url": node.db_url,
            "s3_endpoint": self.s3["endpoint"],
            "s3_access_key": self.s3["access_key"],
            "s3_secret_key": self.s3["secret_key"],
            "s3_bucket": f"pbox-{node.name}",
            "secret_key": self.secret_key,
            "field_key": self.field_key,
            "audit_key": self.audit_key,
            "crypto_suite": self.crypto_suite,
            "host": "127.0.0.1",
            "port": node.port,
            "workers": 1,
            "db_pool_size": 4,
            # no metrics listener: every node's worker would bind the same default port, and all
            # but the first exit at start
            "worker_metrics_port": 0,
            "tls_cert_file": node.cert,
            "tls_key_file": node.key,
            "tls_client_ca_file": self.ca.cert_file,
        }
        ex = {
            "enabled": True,
            "node_name": node.name,
            "signing_key_file": node.signer_file,
            "tls_cert_file": node.cert,
            "tls_key_file": node.key,
            "ca_file": self.ca.cert_file,
            **self.exchange,
            **(exchange or {}),
        }
        lines = [f"{k} = {_toml(v)}" for k, v in top.items()] + ["", "[exchange]"]
        lines += [f"{k} = {_toml(v)}" for k, v in ex.items()]
        for peer_name in self.layout[node.name]:
            peer = self.nodes[peer_name]
            key = (peer_keys or {}).get(peer_name) or self.public_key(peer_name)
            lines += ["", "[[exchange.peers]]"]
            peer_cfg = {
                "name": peer.name,
                "role": peer.role,
                "region_code": peer.region_code,
                "url": peer.url,
                "signing_public_key": key,
            }
            lines += [f"{k} = {_toml(v)}" for k, v in peer_cfg.items()]
        node.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self) -> None:
        for node in self.nodes.values():
            node.start_web(self.ca.cert_file)
        for node in self.nodes.values():
            node.start_worker()
            self.bootstrap_admin(node)

    def stop(self) -> None:
        for node in self.nodes.values():  # every process is ended, whatever one of them does
            for stop in (node.stop_worker, node.stop_web):
                try:
                    stop()
                except Exception as exc:  # the others must still stop
                    print(f"stopping {node.name}: {exc!r}", file=sys.stderr)

    def bootstrap_admin(self, node: Node) -> None:
        """A system administrator (exchange operator) logged in over the API, as at install time."""
        eng = node.engine()
        with eng.begin() as conn, sa.orm.Session(bind=conn) as s:
            cipher = FieldCipher(bytes.fromhex(self.field_key), self.crypto_suite)  # type: ignore[arg-type]
            audit = node.audit_log()
            made = staff.bootstrap(
                s, cipher, audit, 12, "ops-" + node.name[:30], ADMIN_PASSWORD, Role.SYSTEM_ADMIN
            )
            s.flush()
        eng.dispose()
        r = self.client().post(
            f"{node.url}/api/v1/staff/token",
            json={
                "username": "ops-" + node.name[:30],
                "password": ADMIN_PASSWORD,
                "totp_code": pyotp.TOTP(made.totp_secret).now(),
            },
        )
        r.raise_for_status()
        node.token = r.json()["access_token"]

    def client(self) -> httpx.Client:
        """An HTTPS client trusting the test CA, without a client certificate (an enterprise or operator)."""
        return httpx.Client(verify=str(self.ca.cert_file), timeout=60)

    def admin(self, node: str, method: str, path: str, **kw: Any) -> Any:
        n = self.nodes[node]
        with self.client() as c:
            r = c.request(
                method,
                f"{n.url}/api/v1/admin/exchange{path}",
                headers={"Authorization": f"Bearer {n.token}"},
                **kw,
            )
        r.raise_for_status()
        return r.json()
