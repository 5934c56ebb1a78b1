"""Attacks on owner binding (issue 15, point 2), each named for what the attacker wants and refused.

A query code is printed by one shop, and any registered shop can mint one for any VIN (VINs are on
windscreens): a code proves a relationship with that shop only. The car's whole history, shop
grants and ratings need the vehicle-registration check (stand-in here) or an approved 行驶证
photo; proving it ends every other owner's binding of the car (a sale) and tells them.
"""

import json
import uuid
from datetime import date, timedelta

import httpx
import pytest
import sqlalchemy as sa

from app.security.vehicle_registry import Answer, HttpVehicleRegistry, Query, StandInRegistry
from tests.app.conftest import Shop, regulator
from tests.app.servers import serve
from tests.app.test_api_owner import new_owner, standin_registry, verify_full
from tests.app.test_portal_api import SCORES, claim_by_photo, code_of, shop_user
from tests.app.test_portal_pages import browser, register_and_login
from tests.support.registry_standin import create_app as gateway_app
from tests.support.samples import make_id_number, make_record, make_vin

OWNER = "/api/v1/owner"
SHOP = "/api/v1/shop"
REG = "/api/v1/regulator"


def bind(client, h, vin: str, code: str):
    return client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": code}, headers=h)


def history(client, h, vin: str):
    return client.get(f"{OWNER}/vehicles/{vin}/history", headers=h)


def test_fake_shop_cannot_read_other_shops_records_by_binding_its_own_code(client, vin):
    real = Shop(client, name="真实维修服务有限公司")
    real.upload(make_record("REAL-1", vin, settle=date.today() - timedelta(days=40), plate="苏E55555"))
    fake = Shop(client, name="冒名汽修")
    code = fake.upload(make_record("FAKE-1", vin, plate=None)).json()["query_code"]
    _, h = new_owner(client)
    assert bind(client, h, vin, code).status_code == 201
    r = history(client, h, vin)
    assert r.status_code == 200, r.text
    assert [x["settlement_no"] for x in r.json()["records"]] == ["FAKE-1"]
    assert r.json()["full_history"] is False
    for secret in (real.profile["name"], real.profile["uscc"], "REAL-1", "苏E55555"):
        assert secret not in r.text
    scope = client.get(f"{OWNER}/vehicles/{vin}", headers=h).json()
    assert scope["full_history"] is False
    assert [e["uscc"] for e in scope["enterprises"]] == [fake.profile["uscc"]]
    # binding a second shop's code adds that shop's records, and only those
    third = Shop(client, name="第三家汽修")
    code3 = third.upload(make_record("THIRD-1", vin)).json()["query_code"]
    assert bind(client, h, vin, code3).status_code == 201
    assert {x["settlement_no"] for x in history(client, h, vin).json()["records"]} == {"FAKE-1", "THIRD-1"}


def test_code_holder_cannot_rate_or_complain_about_other_shops_repairs(client, vin):
    real = Shop(client)
    victim = real.upload(make_record("VICTIM-1", vin)).json()["record_id"]
    code = Shop(client).upload(make_record("ATTACK-1", vin)).json()["query_code"]
    _, h = new_owner(client)
    assert bind(client, h, vin, code).status_code == 201
    r = client.post(f"{OWNER}/records/{victim}/rating", json={k: 1 for k in SCORES}, headers=h)
    assert code_of(r) == (404, "RECORD_NOT_FOUND")
    r = client.post(
        f"{OWNER}/complaints", json={"record_id": victim, "title": "乱收费", "content": "捏造"}, headers=h
    )
    assert code_of(r) == (404, "RECORD_NOT_FOUND")


def test_shop_cannot_mint_five_star_ratings_with_its_own_codes(client):
    shop = Shop(client, name="刷分汽修")
    for i in range(3):
        vin = make_vin()
        up = shop.upload(make_record(f"MINT-{i}", vin)).json()
        _, h = new_owner(client)  # a fresh "owner" per car: phones are not checked
        assert bind(client, h, vin, up["query_code"]).status_code == 201
        r = client.post(f"{OWNER}/records/{up['record_id']}/rating", json={k: 5 for k in SCORES}, headers=h)
        assert code_of(r) == (403, "FULL_VERIFICATION_REQUIRED")
    assert client.get(f"/api/v1/public/enterprises/{shop.profile['uscc']}").json()["ratings"]["count"] == 0
    # a code does let its holder complain about that shop's repair: a complaint moves no public
    # score, goes to a regulator, and the real owner holding the paper must be able to file it
    r = client.post(
        f"{OWNER}/complaints",
        json={"record_id": up["record_id"], "title": "质量问题", "content": "返修"},
        headers=h,
    )
    assert r.status_code == 201, r.text


def test_shop_cannot_read_the_history_of_cars_it_repaired_without_the_owners_grant(client, engine, vin):
    other = Shop(client, name="他店汽修")
    other.upload(make_record("OTHER-1", vin, settle=date.today() - timedelta(days=30)))
    shop = Shop(client, name="好奇汽修")
    code = shop.upload(make_record("MINE-1", vin)).json()["query_code"]
    staff = shop_user(client, shop)
    # the shop plays owner with its own code, then authorizes itself
    _, h = new_owner(client)
    assert bind(client, h, vin, code).status_code == 201
    r = client.post(
        f"{OWNER}/vehicles/{vin}/grants",
        json={"enterprise_uscc": shop.profile["uscc"], "days": 30},
        headers=h,
    )
    assert code_of(r) == (403, "FULL_VERIFICATION_REQUIRED")
    # a grant such a binding made before the upgrade opens nothing either
    owner_id = client.get(f"{OWNER}/profile", headers=h).json()["owner_id"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO personal.history_grant (owner_id, vin, enterprise_id, expires_at)"
                " VALUES (:o, :v, :e, now() + interval '7 days')"
            ),
            {"o": owner_id, "v": vin, "e": shop.enterprise_id},
        )
    assert code_of(client.get(f"{SHOP}/shared/{vin}/history", headers=staff)) == (
        403,
        "AUTHORIZATION_REQUIRED",
    )
    assert client.get(f"{SHOP}/shared", headers=staff).json() == []


def test_previous_owner_cannot_keep_reading_a_sold_car(client, vin):
    shop = Shop(client, name="过户测试汽修")
    old = shop.upload(make_record("SOLD-1", vin, settle=date.today() - timedelta(days=60))).json()
    _, seller = new_owner(client)
    assert bind(client, seller, vin, old["query_code"]).status_code == 201
    verify_full(client, seller, vin)
    grant = client.post(
        f"{OWNER}/vehicles/{vin}/grants",
        json={"enterprise_uscc": shop.profile["uscc"], "days": 30},
        headers=seller,
    )
    assert grant.status_code == 201
    staff = shop_user(client, shop)
    assert client.get(f"{SHOP}/shared/{vin}/history", headers=staff).status_code == 200

    _, buyer = new_owner(client)
    verify_full(client, buyer, vin)  # the registration now names the buyer
    assert code_of(history(client, seller, vin)) == (403, "VEHICLE_NOT_BOUND")
    assert client.get(f"{OWNER}/vehicles", headers=seller).json() == []
    told = client.get(f"{OWNER}/notifications", headers=seller).json()
    assert [(n["kind"], n["vin"], n["read"]) for n in told] == [("binding_ended", vin, False)]
    assert "过户" in told[0]["text"]
    assert client.get(f"{OWNER}/grants", headers=seller).json()[0]["active"] is False
    assert code_of(client.get(f"{SHOP}/shared/{vin}/history", headers=staff)) == (
        403,
        "AUTHORIZATION_REQUIRED",
    )
    # the seller's old settlement list does not reopen the file ...
    assert code_of(bind(client, seller, vin, old["query_code"])) == (403, "QUERY_CODE_SUPERSEDED")
    # ... while the buyer sees it all, and a repair after the sale binds its holder as usual
    assert [x["settlement_no"] for x in history(client, buyer, vin).json()["records"]] == ["SOLD-1"]
    new = shop.upload(make_record("AFTER-1", vin)).json()
    _, driver = new_owner(client)
    assert bind(client, driver, vin, new["query_code"]).status_code == 201
    assert client.post(f"{OWNER}/notifications/read", headers=seller).status_code == 204
    assert client.get(f"{OWNER}/notifications", headers=seller).json()[0]["read"] is True


def test_previous_owner_cannot_keep_reading_a_car_sold_through_a_licence_photo_review(client, admins, vin):
    shop = Shop(client)
    up = shop.upload(make_record("PH-1", vin, plate="苏A77777")).json()
    web = browser(client)
    phone = register_and_login(web)  # the seller, signed in to the portal
    tok = client.post(f"{OWNER}/token", json={"phone": phone, "password": "pass word 1"}).json()
    seller = {"Authorization": f"Bearer {tok['access_token']}"}
    assert bind(client, seller, vin, up["query_code"]).status_code == 201

    _, buyer = new_owner(client)
    r = claim_by_photo(client, buyer, vin, "苏A77777")
    reg = regulator(client, admins, "320100")
    assert (
        client.post(
            f"{REG}/claims/{r.json()['claim_id']}/review", json={"approve": True}, headers=reg.headers
        )
    ).status_code == 204
    assert [x["settlement_no"] for x in history(client, buyer, vin).json()["records"]] == ["PH-1"]
    assert code_of(history(client, seller, vin)) == (403, "VEHICLE_NOT_BOUND")
    page = web.get("/owner")
    assert "已由新车主完成完整档案认证" in page.text and vin in page.text
    web.post("/owner/notifications/read")
    assert "已由新车主完成完整档案认证" not in web.get("/owner").text


def test_registry_answers_cannot_be_probed_without_limit(client):
    """The registry's yes/no is an oracle on who owns a car: failures are throttled per account and
    per car (several accounts probing one car)."""
    vin = make_vin()
    standin_registry(client).register(vin, "苏A12345", "张三", make_id_number())
    wrong = {"plate_no": "苏A12345", "owner_name": "张三"}
    hits = []
    for _ in range(4):
        _, h = new_owner(client)
        for _ in range(5):
            r = client.post(
                f"{OWNER}/vehicles/{vin}/verification",
                json={**wrong, "id_number": make_id_number()},
                headers=h,
            )
            hits.append(code_of(r))
    assert hits[:5] == [(403, "REGISTRY_NO_MATCH")] * 5
    assert hits.count((429, "AUTH_RATE_LIMITED")) == 5  # the fourth account: the car's 15 are used up
    r = client.post(
        f"{OWNER}/vehicles/{vin}/verification", json={**wrong, "id_number": make_id_number()}, headers=h
    )
    assert code_of(r) == (429, "AUTH_RATE_LIMITED")


def test_someone_elses_id_number_cannot_be_used_to_verify(client, vin):
    id_number = make_id_number()
    client.post(
        f"{OWNER}/accounts",
        json={"phone": "135" + str(uuid.uuid4().int)[:8], "password": "x" * 8, "id_number": id_number},
    )
    standin_registry(client).register(vin, "苏A12345", "李四", id_number)
    _, h = new_owner(client)
    r = client.post(
        f"{OWNER}/vehicles/{vin}/verification",
        json={"plate_no": "苏A12345", "owner_name": "李四", "id_number": id_number},
        headers=h,
    )
    assert code_of(r) == (409, "ID_NUMBER_EXISTS")
    # an account's own ID number (given at registration) is the only one it can be verified with
    own = make_id_number()
    phone = "135" + str(uuid.uuid4().int)[:8]
    client.post(f"{OWNER}/accounts", json={"phone": phone, "password": "x" * 8, "id_number": own})
    tok = client.post(f"{OWNER}/token", json={"phone": phone, "password": "x" * 8}).json()["access_token"]
    r = client.post(
        f"{OWNER}/vehicles/{vin}/verification",
        json={"plate_no": "苏A12345", "owner_name": "李四", "id_number": make_id_number()},
        headers={"Authorization": f"Bearer {tok}"},
    )
    assert code_of(r) == (422, "ID_NUMBER_MISMATCH")


def test_without_a_registry_only_the_photo_review_proves_a_car(client, monkeypatch, vin):
    rt = client.app.state.runtime
    monkeypatch.setattr(rt, "registry", None)
    _, h = new_owner(client)
    body = {"plate_no": "苏A12345", "owner_name": "王五", "id_number": make_id_number()}
    assert code_of(client.post(f"{OWNER}/vehicles/{vin}/verification", json=body, headers=h)) == (
        409,
        "REGISTRY_DISABLED",
    )
    # an endpoint that fails or answers outside the protocol never binds
    for reply in (
        httpx.Response(500),
        httpx.Response(200, json={"result": "yes"}),
        httpx.Response(200, text="<"),
    ):
        broken = HttpVehicleRegistry(
            "https://registry.test/check", 1, transport=httpx.MockTransport(lambda _, r=reply: r)
        )
        monkeypatch.setattr(rt, "registry", broken)
        r = client.post(f"{OWNER}/vehicles/{vin}/verification", json=body, headers=h)
        assert code_of(r) == (503, "REGISTRY_UNAVAILABLE")
        assert r.headers["Retry-After"] == "30"
    assert code_of(history(client, h, vin)) == (403, "VEHICLE_NOT_BOUND")


def test_http_registry_adapter_speaks_the_documented_protocol():
    seen = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = request.read().decode()
        return httpx.Response(200, json={"result": "match" if "11010519491231002X" in body else "no_match"})

    reg = HttpVehicleRegistry(
        "https://registry.test/check", 1, token="t0ken", transport=httpx.MockTransport(gateway)
    )
    q = Query("LSVAM4187C2184847", "苏A12345", "张三", "11010519491231002X")
    assert reg.check(q, "req-1") == Answer.MATCH
    assert reg.check(Query(q.vin, q.plate_no, q.owner_name, "110105194912310021"), None) == Answer.NO_MATCH
    assert seen[0].headers["authorization"] == "Bearer t0ken" and seen[0].headers["x-request-id"] == "req-1"
    assert json.loads(seen[0].content) == {
        "vin": "LSVAM4187C2184847",
        "plate_no": "苏A12345",
        "owner_name": "张三",
        "id_number": "11010519491231002X",
    }


@pytest.mark.parametrize("answer", ["match", "no_match"])
def test_registry_is_chosen_by_settings(tmp_path, answer):
    from app.security import vehicle_registry
    from app.settings import Settings

    assert vehicle_registry.from_settings(Settings()) is None
    assert isinstance(
        vehicle_registry.from_settings(Settings(vehicle_registry_url="https://gw.example/check")),
        HttpVehicleRegistry,
    )
    standin = vehicle_registry.from_settings(Settings(vehicle_registry_standin_file=tmp_path / "r.json"))
    assert isinstance(standin, vehicle_registry.StandInRegistry)
    standin.register("LSVAM4187C2184847", "苏A12345", "张三", "11010519491231002X")
    q = Query(
        "LSVAM4187C2184847", "苏A12345", "张三", "11010519491231002X" if answer == "match" else "1" * 18
    )
    assert standin.check(q).value == answer


def test_bindings_made_before_the_upgrade_keep_working_within_their_new_scope(pg):
    """At 0006 a code binding opened the whole car; after the migration it shows its own shop's
    records, and a binding through an approved 行驶证 claim keeps the whole history."""
    from alembic import command

    from app.db.migrate import alembic_config
    from tests.support.postgres import AppDatabase

    VIN = "LSVAM4187C2184847"
    db = AppDatabase(pg, "binding_upgrade")
    engine = sa.create_engine(db.cluster.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for role, attrs in (
            (db.roles.owner, "LOGIN"),
            (db.roles.runtime, "LOGIN"),
            (db.roles.pii, "NOLOGIN"),
        ):
            if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
                conn.execute(sa.text(f"CREATE ROLE {role} {attrs}"))
        conn.execute(sa.text(f"CREATE DATABASE {db.name} OWNER {db.roles.owner}"))
    engine.dispose()
    cfg = alembic_config(db.owner_url)
    command.upgrade(cfg, "0006")
    owner = sa.create_engine(db.owner_url)
    with owner.begin() as c:
        ents = [
            c.execute(
                sa.text(
                    "INSERT INTO enterprise (uscc, name, region_code) VALUES (:u, :n, '320100') RETURNING id"
                ),
                {"u": u, "n": n},
            ).scalar()
            for u, n in (("91320100MA1UPG001X", "甲"), ("91320100MA1UPG002X", "乙"))
        ]
        recs = [
            c.execute(
                sa.text(
                    "INSERT INTO repair_record (enterprise_id, settlement_no, vin, settle_date,"
                    " current_version, current_received_at, current_digest)"
                    " VALUES (:e, :n, :v, current_date, 1, now(), 'x') RETURNING id"
                ),
                {"e": e, "n": f"UP-{e}", "v": VIN},
            ).scalar()
            for e in ents
        ]
        owners = [
            c.execute(
                sa.text(
                    "INSERT INTO personal.owner_account (phone_hash, phone_enc, password_hash)"
                    " VALUES (:p, 'x', 'x') RETURNING id"
                ),
                {"p": f"phone-{i}".encode()},
            ).scalar()
            for i in range(2)
        ]
        c.execute(
            sa.text("INSERT INTO personal.owner_vehicle (owner_id, vin, via_record_id) VALUES (:o, :v, :r)"),
            {"o": owners[0], "r": recs[1], "v": VIN},
        )
        claim = c.execute(
            sa.text(
                "INSERT INTO personal.vehicle_claim (owner_id, vin, region_code, object_key, sha256,"
                " content_type, status, reviewed_at)"
                " VALUES (:o, :v, '320100', 'k', 's', 'image/png', 'approved', now()) RETURNING id"
            ),
            {"o": owners[1], "v": VIN},
        ).scalar()
        c.execute(
            sa.text("INSERT INTO personal.owner_vehicle (owner_id, vin, via_claim_id) VALUES (:o, :v, :c)"),
            {"o": owners[1], "c": claim, "v": VIN},
        )
    command.upgrade(cfg, "head")
    with owner.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT ov.owner_id, ov.full_via, ov.ended_at,"
                " array_remove(array_agg(s.enterprise_id), NULL) FROM personal.owner_vehicle ov"
                " LEFT JOIN personal.owner_vehicle_scope s USING (owner_id, vin)"
                " GROUP BY ov.owner_id, ov.full_via, ov.ended_at ORDER BY ov.owner_id"
            )
        ).all()
    owner.dispose()
    assert [tuple(r) for r in rows] == [(owners[0], None, None, [ents[1]]), (owners[1], "claim", None, [])]


def test_owner_is_verified_through_the_http_gateway_stand_in(client, monkeypatch, tmp_path, vin):
    """The whole path over real HTTP, as in the lab: the app's adapter, the stand-in gateway (with a
    bearer token), a match binding the whole history; a wrong token is 'unavailable', never a match."""
    data = tmp_path / "registry.json"
    id_number = make_id_number()
    StandInRegistry(data).register(vin, "苏A12345", "赵六", id_number)
    with serve(gateway_app(data, token="s3cret")) as base:
        rt = client.app.state.runtime
        url = f"{base}/check"
        body = {"plate_no": "苏A12345", "owner_name": "赵六", "id_number": id_number}
        _, h = new_owner(client)
        monkeypatch.setattr(rt, "registry", HttpVehicleRegistry(url, 5, token="wrong"))
        r = client.post(f"{OWNER}/vehicles/{vin}/verification", json=body, headers=h)
        assert code_of(r) == (503, "REGISTRY_UNAVAILABLE")
        assert r.headers["Retry-After"] == "30"
        monkeypatch.setattr(rt, "registry", HttpVehicleRegistry(url, 5, token="s3cret"))
        r = client.post(
            f"{OWNER}/vehicles/{vin}/verification", json={**body, "owner_name": "赵七"}, headers=h
        )
        assert code_of(r) == (403, "REGISTRY_NO_MATCH")
        r = client.post(f"{OWNER}/vehicles/{vin}/verification", json=body, headers=h)
        assert (
            r.status_code == 201 and r.json()["full_history"] is True and r.json()["full_via"] == "registry"
        )
