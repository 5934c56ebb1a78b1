"""Staff login (password + TOTP, lockout, idle timeout, revocation, password policy), separated duties."""

import uuid

import pytest
import sqlalchemy as sa

from app.domain.errors import AppError
from app.security.rbac import Role
from app.services import staff
from tests.app.conftest import new_staff

ADMIN = "/api/v1/admin"


def code_of(r):
    return (r.status_code, r.json()["error"]["code"])


def test_login_needs_password_and_a_fresh_totp_code(client, admins):
    who = new_staff(client, admins, Role.AUDIT_ADMIN)
    assert code_of(who.login(code="000000")) == (401, "STAFF_INVALID_CREDENTIALS")
    assert code_of(who.login(password="Wr0ng-Passw0rd!")) == (401, "STAFF_INVALID_CREDENTIALS")
    used = who.code(0)
    assert who.login(code=used).status_code == 200
    assert code_of(who.login(code=used)) == (401, "STAFF_INVALID_CREDENTIALS")  # no replay
    assert client.get(f"{ADMIN}/audit/events", headers=who.headers).status_code == 200


def test_failed_logins_are_counted_for_monitoring(client, admins):
    def failures(reason: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(f'pbox_staff_login_failures_total{{reason="{reason}"}}'):
                return float(line.split()[-1])
        return 0.0

    before = failures("STAFF_INVALID_CREDENTIALS")
    who = new_staff(client, admins, Role.AUDIT_ADMIN)
    for _ in range(3):
        who.login(password="Wr0ng-Passw0rd!")
    assert who.login().status_code == 200
    assert failures("STAFF_INVALID_CREDENTIALS") == before + 3


def test_brute_force_locks_the_account(client, admins, engine):
    who = new_staff(client, admins, Role.REGULATOR, "320100")
    for _ in range(5):
        who.login(password="Wr0ng-Passw0rd!")
    # even the right credentials; answered as a wrong password (login does not tell a locked account
    # apart), while the audit log keeps the reason
    assert code_of(who.login()) == (401, "STAFF_INVALID_CREDENTIALS")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE staff_account SET locked_until = now() - interval '1 second' WHERE id = :i"),
            {"i": who.staff_id},
        )
    assert who.login(1).status_code == 200
    with engine.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT outcome, detail->>'reason' FROM audit.event WHERE subject = :u ORDER BY seq"),
            {"u": who.username},
        ).all()
    assert outcomes.count(("failure", "STAFF_INVALID_CREDENTIALS")) == 5
    assert ("failure", "ACCOUNT_LOCKED") in outcomes and outcomes[-1] == ("success", "ok")


def test_idle_sessions_expire(client, admins, engine):
    who = new_staff(client, admins, Role.AUDIT_ADMIN)
    assert who.login().status_code == 200
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE staff_session SET last_seen_at = now() - interval '16 minutes' WHERE staff_id = :i"
            ),
            {"i": who.staff_id},
        )
    assert code_of(client.get(f"{ADMIN}/audit/verify", headers=who.headers)) == (401, "SESSION_EXPIRED")


def test_sessions_are_revocable(client, admins):
    who = new_staff(client, admins, Role.AUDIT_ADMIN)
    assert who.login(-1).status_code == 200
    assert client.post("/api/v1/staff/logout", headers=who.headers).status_code == 204
    assert code_of(client.get(f"{ADMIN}/audit/verify", headers=who.headers)) == (401, "SESSION_REVOKED")
    assert who.login(0).status_code == 200
    r = client.post(
        f"{ADMIN}/staff/{who.staff_id}/sessions/revoke", headers=admins[Role.SECURITY_ADMIN].headers
    )
    assert r.json() == {"revoked": 1}
    assert code_of(client.get(f"{ADMIN}/audit/verify", headers=who.headers)) == (401, "SESSION_REVOKED")
    assert who.login(1).status_code == 200
    r = client.post(f"{ADMIN}/staff/{who.staff_id}/disable", headers=admins[Role.SYSTEM_ADMIN].headers)
    assert r.status_code == 204
    assert code_of(client.get(f"{ADMIN}/audit/verify", headers=who.headers)) == (401, "SESSION_REVOKED")


def test_password_policy_expiry_and_change(client, admins, engine):
    # the policy holds for the password the owner sets at first login (the administrator sets none)
    name = "u-weak-" + uuid.uuid4().hex[:6]
    r = client.post(f"{ADMIN}/staff", json={"username": name}, headers=admins[Role.SYSTEM_ADMIN].headers)
    code = r.json()["activation_code"]
    for weak in ("short1!A", "alllowercaseletters", f"{name}-Pass1!"):
        r = client.post(
            "/api/v1/staff/first-login",
            json={"username": name, "activation_code": code, "new_password": weak},
        )
        assert code_of(r) == (422, "PASSWORD_POLICY"), weak
    who = new_staff(client, admins, Role.AUDIT_ADMIN)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE staff_account SET password_changed_at = now() - interval '91 days' WHERE id = :i"
            ),
            {"i": who.staff_id},
        )
    assert code_of(who.login(-1)) == (403, "PASSWORD_EXPIRED")
    body = {"username": who.username, "password": who.password, "totp_code": who.code(0)}
    r = client.post("/api/v1/staff/password", json={**body, "new_password": who.password})
    assert code_of(r) == (422, "PASSWORD_REUSED")
    body["totp_code"] = who.code(1)
    r = client.post("/api/v1/staff/password", json={**body, "new_password": "An0ther-L0ng-Pass"})
    assert r.status_code == 204, r.text
    who.password = "An0ther-L0ng-Pass"
    # all three TOTP steps are used up now; the next login waits for a new one, so check via the DB
    with engine.connect() as conn:
        fresh = conn.execute(
            sa.text(
                "SELECT password_changed_at > now() - interval '1 minute' FROM staff_account WHERE id = :i"
            ),
            {"i": who.staff_id},
        ).scalar()
    assert fresh


def test_separation_of_duties(client, admins):
    sys_h = admins[Role.SYSTEM_ADMIN].headers
    sec_h = admins[Role.SECURITY_ADMIN].headers
    aud_h = admins[Role.AUDIT_ADMIN].headers
    target = new_staff(client, admins)
    role = {"role": "regulator", "region_code": "320100"}
    # the system administrator manages accounts but neither grants roles nor reads the audit log
    assert code_of(client.put(f"{ADMIN}/staff/{target.staff_id}/role", json=role, headers=sys_h))[0] == 403
    assert code_of(client.get(f"{ADMIN}/audit/events", headers=sys_h)) == (403, "FORBIDDEN")
    # the security administrator grants roles, but not to itself, and makes no accounts
    sec_id = admins[Role.SECURITY_ADMIN].staff_id
    r = client.put(f"{ADMIN}/staff/{sec_id}/role", json={"role": "audit_admin"}, headers=sec_h)
    assert code_of(r) == (403, "ROLE_SELF_ASSIGN")
    r = client.post(
        f"{ADMIN}/staff", json={"username": "u-sneaky", "password": "Str0ng-Passw0rd!"}, headers=sec_h
    )
    assert code_of(r) == (403, "FORBIDDEN")
    assert code_of(client.get(f"{ADMIN}/audit/events", headers=sec_h)) == (403, "FORBIDDEN")
    # the audit administrator reads the log and nothing else
    assert code_of(client.put(f"{ADMIN}/staff/{target.staff_id}/role", json=role, headers=aud_h))[0] == 403
    assert code_of(client.post(f"{ADMIN}/staff/{target.staff_id}/disable", headers=aud_h))[0] == 403
    events = client.get(f"{ADMIN}/audit/events", params={"limit": 500}, headers=aud_h).json()
    assert {"staff.create", "staff.role", "staff.login"} <= {e["action"] for e in events}
    # a regulator must have a region, and nobody else may have one
    r = client.put(f"{ADMIN}/staff/{target.staff_id}/role", json={"role": "regulator"}, headers=sec_h)
    assert code_of(r) == (422, "REGION_SCOPE_REQUIRED")
    r = client.put(f"{ADMIN}/staff/{target.staff_id}/role", json={"role": "owner"}, headers=sec_h)
    assert code_of(r) == (422, "ROLE_INVALID")
    # an account without a role can do nothing
    assert target.login().status_code == 200
    assert code_of(client.get(f"{ADMIN}/audit/events", headers=target.headers)) == (403, "FORBIDDEN")


def test_bootstrap_makes_only_the_first_administrator(client, admins):
    rt = client.app.state.runtime
    with pytest.raises(AppError) as e, rt.db.transaction() as s:
        staff.bootstrap(s, rt.crypto, rt.audit, 12, "u-second-sys", "Str0ng-Passw0rd!", Role.SYSTEM_ADMIN)
    assert e.value.code == "STAFF_EXISTS"
