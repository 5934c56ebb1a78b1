"""The audit log: logins recorded, changes refused, tampering found by `pbox audit verify-log`."""

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db.session import Database
from app.security.auditlog import AuditLog, Event
from app.security.rbac import Role
from tests.app.conftest import Shop, migrated_database
from tests.app.test_api_owner import new_owner


def test_logins_are_audited(client, engine):
    shop = Shop(client)
    client.post("/api/v1/collection/token", json={"key_id": shop.key_id, "secret": "wrong"})
    phone, _ = new_owner(client)
    client.post(
        "/api/v1/owner/token",
        json={"phone": phone, "password": "wrong wrong"},
        headers={"X-Real-IP": "203.0.113.9"},
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT action, outcome FROM audit.event WHERE subject = :s OR client_ip = '203.0.113.9'"
            ),
            {"s": f"key:{shop.key_id}"},
        ).all()
    assert {("enterprise.login", "success"), ("enterprise.login", "failure")} <= set(rows)
    assert {("owner.login", "success"), ("owner.login", "failure")} <= set(rows)


@pytest.mark.parametrize(
    "stmt",
    ["UPDATE audit.event SET outcome = 'success'", "DELETE FROM audit.event", "TRUNCATE audit.event"],
)
def test_the_log_is_append_only(engine, stmt):
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(stmt))


def test_audit_admin_verifies_the_live_chain(client, admins):
    r = client.get("/api/v1/admin/audit/verify", headers=admins[Role.AUDIT_ADMIN].headers)
    assert r.status_code == 200 and r.json()["ok"] and r.json()["checked"] > 0


@pytest.fixture(scope="module")
def scratch_url(pg):
    """A database of its own: these tests break its chain on purpose."""
    return migrated_database(pg, "pbox_tamper").superuser_url


def verify_log(url):
    return subprocess.run(
        [str(Path(sys.executable).parent / "pbox"), "audit", "verify-log", "--database-url", url],
        capture_output=True,
        text=True,
        check=False,
    )


def test_verify_log_names_the_first_tampered_row(scratch_url):
    db = Database(scratch_url, pool_size=1)
    try:
        for alg in ("sha256", "sm3", "sha256", "sm3", "sha256"):  # the suites may alternate in one chain
            with db.transaction() as s:
                AuditLog(alg).record(s, Event("owner", "7", "vehicle_history", "LSVAM4187C2184847"))
    finally:
        db.dispose()
    ok = verify_log(scratch_url)
    assert ok.returncode == 0 and "5 rows" in ok.stdout, ok.stdout + ok.stderr

    tamper = sa.create_engine(scratch_url)
    with tamper.begin() as conn:
        # a superuser can switch triggers off; the chain still gives the edit away
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("UPDATE audit.event SET actor_id = '8' WHERE seq = 3"))
    bad = verify_log(scratch_url)
    assert bad.returncode == 1 and "seq 3" in bad.stderr, bad.stdout + bad.stderr

    with tamper.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("UPDATE audit.event SET actor_id = '7' WHERE seq = 3"))
        conn.execute(sa.text("DELETE FROM audit.event WHERE seq = 2"))
    tamper.dispose()
    bad = verify_log(scratch_url)
    assert bad.returncode == 1 and "seq 2" in bad.stderr, bad.stdout + bad.stderr


def test_verify_log_reports_an_unreachable_database():
    r = verify_log("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert r.returncode == 2 and "cannot read the audit log" in r.stderr
