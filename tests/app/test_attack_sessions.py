"""Attacks on separation of duties, sessions and the transport (issue 15, points 4 and 8), each refused.

Separation of duties: the system administrator makes and resets staff accounts but never holds a
working credential for one. Sessions: logout ends owner and shop tokens; owners change their
password and close their account. Transport: only the load balancers may name the client's address;
staff login does not tell which usernames exist.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from app.security.rbac import Role
from app.security.signing import new_private_pem
from tests.app.conftest import STAFF_PASSWORD, Shop, Staff, audit_actions, enrol, new_staff
from tests.app.test_exchange_proxy import VERIFIED, _app, _statistics
from tests.support.samples import make_id_number, make_record

ADMIN = "/api/v1/admin"
STAFF = "/api/v1/staff"
OWNER = "/api/v1/owner"


def code_of(r):
    return (r.status_code, r.json()["error"]["code"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_token(client, username: str, password: str, code: str):
    return client.post(f"{STAFF}/token", json={"username": username, "password": password, "totp_code": code})


# --- separation of duties -------------------------------------------------------------------------


def test_system_admin_cannot_act_as_the_audit_admin_it_creates(client, admins):
    sys_h = admins[Role.SYSTEM_ADMIN].headers
    name = "u-aud-" + uuid.uuid4().hex[:6]
    chosen = "Sys-Ch0sen-Passw0rd!"
    # whatever the system administrator sends, it gets no password of its choosing and no TOTP secret
    r = client.post(f"{ADMIN}/staff", json={"username": name, "password": chosen}, headers=sys_h)
    assert r.status_code == 201, r.text
    made = r.json()
    assert "totp_secret" not in made and "totp_uri" not in made
    code = made["activation_code"]
    # the activation code (or the password it tried to set) opens no session
    assert staff_token(client, name, chosen, "000000").status_code == 401
    assert code_of(staff_token(client, name, code, "000000")) == (403, "ENROLMENT_REQUIRED")

    # the owner of the account enrols; the security administrator then makes it the audit admin
    secret, _ = enrol(client, name, code, "0wn-Secret-Passw0rd")
    r = client.put(
        f"{ADMIN}/staff/{made['staff_id']}/role",
        json={"role": "audit_admin"},
        headers=admins[Role.SECURITY_ADMIN].headers,
    )
    assert r.status_code == 204, r.text

    # what the system administrator holds is worth nothing now
    assert code_of(staff_token(client, name, code, "000000")) == (401, "STAFF_INVALID_CREDENTIALS")
    assert code_of(staff_token(client, name, chosen, "000000")) == (401, "STAFF_INVALID_CREDENTIALS")
    again = {"username": name, "activation_code": code, "new_password": "Sys-0ther-Passw0rd!"}
    assert code_of(client.post(f"{STAFF}/first-login", json=again)) == (401, "ENROLMENT_INVALID")
    # while the owner logs in with what only the owner has
    owner = staff_token(client, name, "0wn-Secret-Passw0rd", pyotp.TOTP(secret).now())
    assert owner.status_code == 200, owner.text
    assert (
        client.get(f"{ADMIN}/audit/events", headers=bearer(owner.json()["access_token"])).status_code == 200
    )


def test_reset_gives_the_system_admin_no_way_into_the_account(client, admins, engine):
    sys_h = admins[Role.SYSTEM_ADMIN].headers
    sec_h = admins[Role.SECURITY_ADMIN].headers
    victim = new_staff(client, admins, Role.AUDIT_ADMIN)
    assert victim.login().status_code == 200
    old_session = victim.headers

    r = client.post(f"{ADMIN}/staff/{victim.staff_id}/reset", headers=sys_h)
    assert r.status_code == 200, r.text
    assert "totp_secret" not in r.json()
    code = r.json()["activation_code"]
    # the reset ends the sessions, the old password and the role
    assert code_of(client.get(f"{ADMIN}/audit/verify", headers=old_session)) == (401, "SESSION_REVOKED")
    assert code_of(victim.login(1)) == (401, "STAFF_INVALID_CREDENTIALS")
    # the system administrator cannot log in with the code it got
    assert code_of(staff_token(client, victim.username, code, victim.code(1))) == (403, "ENROLMENT_REQUIRED")
    # and a role goes only to an account whose owner has enrolled
    role = {"role": "audit_admin"}
    r = client.put(f"{ADMIN}/staff/{victim.staff_id}/role", json=role, headers=sec_h)
    assert code_of(r) == (409, "ENROLMENT_PENDING")

    # the owner re-enrols (own password, new TOTP secret), then gets the role back
    secret, _ = enrol(client, victim.username, code, "N3w-0wn-Passw0rd!")
    assert secret != victim.secret
    assert client.put(f"{ADMIN}/staff/{victim.staff_id}/role", json=role, headers=sec_h).status_code == 204
    back = Staff(client, victim.username, secret, victim.staff_id)
    back.password = "N3w-0wn-Passw0rd!"
    assert back.login(1).status_code == 200
    assert "staff.reset" in audit_actions(engine, f"staff:{victim.staff_id}")


def test_activation_code_is_single_use_and_expires(client, admins, engine):
    sys_h = admins[Role.SYSTEM_ADMIN].headers
    name = "u-once-" + uuid.uuid4().hex[:6]
    code = client.post(f"{ADMIN}/staff", json={"username": name}, headers=sys_h).json()["activation_code"]
    body = {"username": name, "activation_code": code, "new_password": STAFF_PASSWORD}
    first = client.post(f"{STAFF}/first-login", json=body)
    assert first.status_code == 200, first.text
    # used once: a second step one (by whoever else knows the code) is refused
    assert code_of(client.post(f"{STAFF}/first-login", json=body)) == (401, "ENROLMENT_INVALID")
    # before the TOTP is confirmed the account gets no session, even with password and a good code
    secret = first.json()["totp_secret"]
    r = staff_token(client, name, STAFF_PASSWORD, pyotp.TOTP(secret).now())
    assert code_of(r) == (403, "ENROLMENT_REQUIRED")
    confirm_code = pyotp.TOTP(secret).at(time.time() - 30)
    token = first.json()["enrolment_token"]
    r = client.post(
        f"{STAFF}/first-login/confirm", json={"enrolment_token": token, "totp_code": confirm_code}
    )
    assert r.status_code == 200, r.text
    # the enrolment token is used up, and the confirmation's TOTP code is not accepted again
    r = client.post(
        f"{STAFF}/first-login/confirm", json={"enrolment_token": token, "totp_code": confirm_code}
    )
    assert code_of(r) == (401, "ENROLMENT_INVALID")
    assert code_of(staff_token(client, name, STAFF_PASSWORD, confirm_code)) == (
        401,
        "STAFF_INVALID_CREDENTIALS",
    )

    # an activation code not used in time expires
    late = "u-late-" + uuid.uuid4().hex[:6]
    made = client.post(f"{ADMIN}/staff", json={"username": late}, headers=sys_h).json()
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE staff_account SET enrol_expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": made["staff_id"]},
        )
    body = {"username": late, "activation_code": made["activation_code"], "new_password": STAFF_PASSWORD}
    assert code_of(client.post(f"{STAFF}/first-login", json=body)) == (401, "ENROLMENT_INVALID")


def test_staff_login_does_not_tell_which_usernames_exist(client, admins, engine):
    locked = new_staff(client, admins, Role.REGULATOR, "320100")
    for _ in range(5):
        locked.login(password="Wr0ng-Passw0rd!")
    disabled = new_staff(client, admins)
    client.post(f"{ADMIN}/staff/{disabled.staff_id}/disable", headers=admins[Role.SYSTEM_ADMIN].headers)
    known = new_staff(client, admins)

    def answer(username: str, password: str, code: str) -> tuple[int, dict]:
        r = staff_token(client, username, password, code)
        return r.status_code, r.json()

    unknown = answer("u-nobody-" + uuid.uuid4().hex[:6], STAFF_PASSWORD, "123456")
    wrong_password = answer(known.username, "Wr0ng-Passw0rd!", known.code())
    # a locked account, even with its right password and code; a disabled one likewise
    assert answer(locked.username, STAFF_PASSWORD, locked.code()) == unknown
    assert answer(disabled.username, STAFF_PASSWORD, disabled.code()) == unknown
    assert wrong_password == unknown == (401, unknown[1])
    assert unknown[1]["error"]["code"] == "STAFF_INVALID_CREDENTIALS"
    # the audit log keeps the real reason
    with engine.connect() as conn:
        reasons = (
            conn.execute(
                sa.text(
                    "SELECT detail->>'reason' FROM audit.event WHERE action = 'staff.login' AND subject = :u"
                ),
                {"u": locked.username},
            )
            .scalars()
            .all()
        )
    assert "ACCOUNT_LOCKED" in reasons


# --- transport --------------------------------------------------------------------------------------


def test_direct_caller_cannot_choose_its_recorded_address(client, engine):
    # app-web listens on all addresses: a caller that is not a load balancer names its own address
    direct = TestClient(client.app, client=("198.51.100.23", 40000))
    phone = "137" + str(uuid.uuid4().int)[:8]
    r = direct.post(
        f"{OWNER}/token", json={"phone": phone, "password": "x" * 8}, headers={"X-Real-IP": "1.2.3.4"}
    )
    assert r.status_code == 401
    # through the load balancer (loopback here, a trusted proxy) the header is believed
    client.post(
        f"{OWNER}/token", json={"phone": phone, "password": "x" * 8}, headers={"X-Real-IP": "192.0.2.77"}
    )
    with engine.connect() as conn:
        ips = (
            conn.execute(
                sa.text(
                    "SELECT client_ip FROM audit.event WHERE action = 'owner.login' ORDER BY seq DESC LIMIT 2"
                )
            )
            .scalars()
            .all()
        )
        limited = set(
            conn.execute(sa.text("SELECT subject FROM auth_failure WHERE subject LIKE 'ip:%'"))
            .scalars()
            .all()
        )
    assert ips == ["192.0.2.77", "198.51.100.23"]
    assert "ip:198.51.100.23" in limited and "ip:1.2.3.4" not in limited


# --- owner and shop sessions ------------------------------------------------------------------------


def new_owner(client, password: str = "correct horse", **extra) -> tuple[str, str]:
    phone = "136" + str(uuid.uuid4().int)[:8]
    r = client.post(f"{OWNER}/accounts", json={"phone": phone, "password": password, **extra})
    assert r.status_code == 201, r.text
    return phone, owner_login(client, phone, password)


def owner_login(client, phone: str, password: str) -> str:
    r = client.post(f"{OWNER}/token", json={"phone": phone, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_owner_token_is_dead_after_logout(client):
    _, token = new_owner(client)
    assert client.get(f"{OWNER}/vehicles", headers=bearer(token)).status_code == 200
    assert client.post(f"{OWNER}/logout", headers=bearer(token)).status_code == 204
    assert code_of(client.get(f"{OWNER}/vehicles", headers=bearer(token))) == (401, "SESSION_REVOKED")


def test_owner_portal_cookie_is_dead_after_logout(client):
    phone, _ = new_owner(client)
    web = TestClient(client.app, client=("127.0.0.1", 40001))
    r = web.post("/owner/login", data={"phone": phone, "password": "correct horse"}, follow_redirects=False)
    assert r.status_code == 303
    stolen = web.cookies.get("pbox_owner")
    assert web.post("/owner/logout", follow_redirects=False).status_code == 303
    # the token copied out of the cookie before logout no longer works
    assert client.get(f"{OWNER}/vehicles", headers=bearer(stolen)).status_code == 401


def test_shop_token_is_dead_after_logout(client):
    shop = Shop(client)
    name = "shop-" + uuid.uuid4().hex[:8]
    r = client.post(
        "/api/v1/collection/users", json={"username": name, "password": "shop pass 1"}, headers=shop.headers
    )
    assert r.status_code == 201, r.text
    token = client.post("/api/v1/shop/token", json={"username": name, "password": "shop pass 1"}).json()[
        "access_token"
    ]
    assert client.get("/api/v1/shop/uploads", headers=bearer(token)).status_code == 200
    assert client.post("/api/v1/shop/logout", headers=bearer(token)).status_code == 204
    assert code_of(client.get("/api/v1/shop/uploads", headers=bearer(token))) == (401, "SESSION_REVOKED")


def test_stolen_owner_session_ends_when_the_owner_changes_the_password(client):
    phone, mine = new_owner(client)
    stolen = owner_login(client, phone, "correct horse")
    body = {"password": "wrong guess", "new_password": "new horse battery"}
    assert code_of(client.post(f"{OWNER}/password", json=body, headers=bearer(stolen))) == (
        403,
        "PASSWORD_WRONG",
    )
    body["password"] = "correct horse"
    r = client.post(f"{OWNER}/password", json=body, headers=bearer(mine))
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    assert client.get(f"{OWNER}/vehicles", headers=bearer(fresh)).status_code == 200
    for old in (stolen, mine):
        assert code_of(client.get(f"{OWNER}/vehicles", headers=bearer(old))) == (401, "SESSION_REVOKED")
    assert (
        client.post(f"{OWNER}/token", json={"phone": phone, "password": "correct horse"}).status_code == 401
    )
    owner_login(client, phone, "new horse battery")


def test_closed_owner_account_keeps_no_personal_data(client, engine, vin):
    rt = client.app.state.runtime
    phone, token = new_owner(client, display_name="王女士", id_number=make_id_number())
    owner_id = client.get(f"{OWNER}/profile", headers=bearer(token)).json()["owner_id"]
    shop = Shop(client)
    record_id = shop.upload(make_record("CL-1", vin)).json()["record_id"]
    photo_key = f"claims/test-{uuid.uuid4().hex}.jpg"
    rt.objects.put(photo_key, b"\xff\xd8 photo", "image/jpeg", "0" * 64)
    until = datetime.now(UTC) + timedelta(days=5)
    with engine.begin() as conn:  # what the owner did: a car, a grant, a pending claim, a complaint
        conn.execute(
            sa.text("INSERT INTO personal.owner_vehicle (owner_id, vin, via_record_id) VALUES (:o, :v, :r)"),
            {"o": owner_id, "v": vin, "r": record_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO personal.history_grant (owner_id, vin, enterprise_id, expires_at)"
                " VALUES (:o, :v, :e, :t)"
            ),
            {"o": owner_id, "v": vin, "e": shop.enterprise_id, "t": until},
        )
        conn.execute(
            sa.text(
                "INSERT INTO personal.vehicle_claim (owner_id, vin, plate_no, region_code, object_key,"
                " sha256, content_type) VALUES (:o, :v, '苏A12345', '320100', :k, :h, 'image/jpeg')"
            ),
            {"o": owner_id, "v": vin, "k": photo_key, "h": "0" * 64},
        )
        complaint_id = conn.execute(
            sa.text(
                "INSERT INTO complaint (record_id, enterprise_id, owner_id, region_code, title, content,"
                " deadline_at) VALUES (:r, :e, :o, '320100', '质量问题', '刹车仍异响', :t) RETURNING id"
            ),
            {"r": record_id, "e": shop.enterprise_id, "o": owner_id, "t": until},
        ).scalar_one()

    r = client.post(f"{OWNER}/account/close", json={"password": "wrong one"}, headers=bearer(token))
    assert code_of(r) == (403, "PASSWORD_WRONG")
    assert (
        client.post(
            f"{OWNER}/account/close", json={"password": "correct horse"}, headers=bearer(token)
        ).status_code
        == 204
    )

    # nobody signs in as it any more, and its token is dead
    assert (
        client.post(f"{OWNER}/token", json={"phone": phone, "password": "correct horse"}).status_code == 401
    )
    assert client.get(f"{OWNER}/vehicles", headers=bearer(token)).status_code == 401
    with engine.connect() as conn:
        acct = conn.execute(
            sa.text("SELECT * FROM personal.owner_account WHERE id = :o"), {"o": owner_id}
        ).one()
        cars = conn.execute(
            sa.text("SELECT count(*) FROM personal.owner_vehicle WHERE owner_id = :o"), {"o": owner_id}
        ).scalar()
        live_grants = conn.execute(
            sa.text("SELECT count(*) FROM personal.history_grant WHERE owner_id = :o AND revoked_at IS NULL"),
            {"o": owner_id},
        ).scalar()
        claims = conn.execute(
            sa.text("SELECT status, plate_no FROM personal.vehicle_claim WHERE owner_id = :o"),
            {"o": owner_id},
        ).all()
        complaint = conn.execute(
            sa.text("SELECT owner_id, content FROM complaint WHERE id = :c"), {"c": complaint_id}
        ).one()
        record = conn.execute(
            sa.text("SELECT status FROM repair_record WHERE id = :r"), {"r": record_id}
        ).scalar()
        closed = (
            conn.execute(
                sa.text("SELECT outcome FROM audit.event WHERE action = 'owner.close' AND actor_id = :o"),
                {"o": str(owner_id)},
            )
            .scalars()
            .all()
        )
    personal = (acct.phone_hash, acct.phone_enc, acct.name_enc, acct.id_number_hash, acct.id_number_enc)
    assert personal == (None,) * 5 and acct.closed_at is not None
    assert (cars, live_grants) == (0, 0)
    assert claims == []  # the pending claim is gone
    assert tuple(complaint) == (owner_id, "刹车仍异响")  # kept, pointing at an account with nothing personal
    assert record == "active"  # the repair record is kept
    assert closed == ["failure", "success"]
    with pytest.raises(ClientError):  # the 行驶证 photo is gone from the object store
        rt.objects.get(photo_key)
    # the phone number is free again: a new account, sharing nothing with the closed one
    r = client.post(f"{OWNER}/accounts", json={"phone": phone, "password": "another horse"})
    assert r.status_code == 201 and r.json()["owner_id"] != owner_id


# --- the portal pages of the same flows --------------------------------------------------------------


def test_staff_first_login_in_the_portal(client, admins):
    name = "u-web-" + uuid.uuid4().hex[:6]
    made = client.post(f"{ADMIN}/staff", json={"username": name}, headers=admins[Role.SYSTEM_ADMIN].headers)
    code = made.json()["activation_code"]
    web = TestClient(client.app, client=("127.0.0.1", 40002))
    login = {"username": name, "password": code, "totp_code": "123456"}
    r = web.post("/staff/login", data=login)
    assert r.status_code == 403 and 'href="/staff/first-login"' in r.text  # sent to the first login
    step = {"username": name, "activation_code": code, "new_password": STAFF_PASSWORD}
    assert web.post("/staff/first-login", data={**step, "new_password2": "other"}).status_code == 422
    r = web.post("/staff/first-login", data={**step, "new_password2": STAFF_PASSWORD})
    assert r.status_code == 200, r.text
    secret = r.text.split('id="totp_secret">')[1].split("<")[0]
    token = r.text.split('name="enrolment_token" value="')[1].split('"')[0]
    confirm = {"enrolment_token": token, "totp_secret": secret, "totp_uri": "", "totp_code": "000000"}
    assert web.post("/staff/first-login/confirm", data=confirm).status_code == 401  # a wrong code: again
    confirm["totp_code"] = pyotp.TOTP(secret).at(time.time() - 30)
    r = web.post("/staff/first-login/confirm", data=confirm)
    assert r.status_code == 200 and "首次登录已完成" in r.text
    r = web.post(
        "/staff/login",
        data={"username": name, "password": STAFF_PASSWORD, "totp_code": pyotp.TOTP(secret).now()},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_owner_changes_password_and_closes_account_in_the_portal(client):
    phone, _ = new_owner(client)
    web = TestClient(client.app, client=("127.0.0.1", 40003))
    web.post("/owner/login", data={"phone": phone, "password": "correct horse"}, follow_redirects=False)
    before = web.cookies.get("pbox_owner")
    assert web.get("/owner/account").status_code == 200
    change = {"password": "wrong", "new_password": "brand new pass", "new_password2": "brand new pass"}
    assert web.post("/owner/account/password", data=change).status_code == 403
    change["password"] = "correct horse"
    r = web.post("/owner/account/password", data=change)
    assert r.status_code == 200 and "密码已修改" in r.text
    assert client.get(f"{OWNER}/vehicles", headers=bearer(before)).status_code == 401  # the old session
    close = {"password": "brand new pass", "confirm": "不注销"}
    assert web.post("/owner/account/close", data=close).status_code == 422
    r = web.post("/owner/account/close", data={**close, "confirm": "注销"}, follow_redirects=False)
    assert r.status_code == 303
    assert (
        client.post(f"{OWNER}/token", json={"phone": phone, "password": "brand new pass"}).status_code == 401
    )


@pytest.fixture(scope="module")
def exchange_keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("attack-proxy-keys")
    (d / "own.pem").write_bytes(new_private_pem())
    (d / "peer.pem").write_bytes(new_private_pem())
    return d


def test_direct_caller_cannot_pose_as_a_peer_with_proxy_headers(settings, exchange_keys):
    # trust_proxy_client_cert is on (nginx in front verifies peers' certificates), but a caller that
    # reaches app-web directly sends the verified-certificate headers itself
    with _app(settings, exchange_keys, trust=True) as through_nginx:
        direct = TestClient(through_nginx.app, client=("198.51.100.40", 40004))
        msg = _statistics(exchange_keys)
        r = direct.post("/api/exchange/v1/messages", json={"messages": [msg]}, headers=VERIFIED)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "PEER_CERT_REQUIRED")
        r = through_nginx.post("/api/exchange/v1/messages", json={"messages": [msg]}, headers=VERIFIED)
        assert r.json()["results"] == [{"id": msg["id"], "status": "applied"}]


def test_failed_owner_logins_keep_no_phone_number_in_clear(client, engine):
    """The login throttle's table lies outside the personal schema: a mistyped password must not leave
    the owner's phone number there, and old failures are dropped once they no longer count."""
    phone, _ = new_owner(client)
    r = client.post(f"{OWNER}/token", json={"phone": phone, "password": "not the password"})
    assert r.status_code == 401
    with engine.begin() as conn:
        subjects = [s for (s,) in conn.execute(sa.text("SELECT subject FROM auth_failure"))]
        assert not [s for s in subjects if phone in s], subjects
        stale = "INSERT INTO auth_failure (subject, at) VALUES ('ip:192.0.2.1', now() - interval '2 days')"
        conn.execute(sa.text(stale))
    rt = client.app.state.runtime
    with rt.db.transaction() as s:
        assert rt.limiter.purge(s) >= 1
    with engine.connect() as conn:
        old = conn.execute(sa.text("SELECT count(*) FROM auth_failure WHERE at < now() - interval '1 day'"))
        old = old.scalar()
    assert old == 0
