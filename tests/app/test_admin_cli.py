"""`app-admin bootstrap`, the operator's first administrators on a fresh node, as a real process
with the node's settings in its environment (as `pbox-admin` runs it on a deployed host)."""

import re
import subprocess
import sys

import pyotp
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import migrated_database
from tests.app.test_processes import env_for

PASSWORD = "Install-Time-Passw0rd"


def app_admin(env: dict[str, str], *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.admin", *args], input=password + "\n", env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_bootstrap_makes_a_first_administrator_who_logs_in_and_only_once(pg, settings):
    db = migrated_database(pg, "admin_cli")
    node = settings.model_copy(update={"database_url": db.runtime_url})
    env = env_for(node)

    r = app_admin(env, "bootstrap", "--role", "system_admin", "--username", "ops-zhang", "--password-stdin")
    assert r.returncode == 0, r.stderr
    secret = re.search(r"^TOTP secret: (\S+)$", r.stdout, re.M)
    assert secret and "otpauth://totp/" in r.stdout, r.stdout
    with TestClient(create_app(node)) as c:
        login = c.post("/api/v1/staff/token", json={"username": "ops-zhang", "password": PASSWORD,
                                                    "totp_code": pyotp.TOTP(secret.group(1)).now()})
        assert login.status_code == 200, login.text
        # As a system administrator: makes the next staff account.
        made = c.post("/api/v1/admin/staff", json={"username": "u-zhao", "password": PASSWORD},
                      headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert made.status_code == 201, made.text

    # A second one of the same role: refused, nothing made. Another role: allowed.
    again = app_admin(env, "bootstrap", "--role", "system_admin", "--username", "ops-li", "--password-stdin")
    assert again.returncode != 0 and "STAFF_EXISTS" in again.stderr, (again.stdout, again.stderr)
    audit = ("bootstrap", "--role", "audit_admin", "--username", "audit-wang", "--password-stdin")
    weak = app_admin(env, *audit, password="short")
    assert weak.returncode != 0 and "app-admin:" in weak.stderr, weak.stderr
    assert app_admin(env, *audit).returncode == 0

    eng = sa.create_engine(db.owner_url)
    try:
        with eng.connect() as conn:
            names = conn.execute(sa.text("SELECT role FROM staff_account ORDER BY id")).scalars().all()
            events = conn.execute(sa.text("SELECT actor_kind, action FROM audit.event"
                                          " WHERE action = 'staff.bootstrap' ORDER BY seq")).all()
    finally:
        eng.dispose()
    assert names == ["system_admin", None, "audit_admin"]
    assert [tuple(e) for e in events] == [("operator", "staff.bootstrap")] * 2
