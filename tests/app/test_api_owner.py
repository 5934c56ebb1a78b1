import tempfile
import uuid
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from app.security.vehicle_registry import StandInRegistry
from tests.app.conftest import Shop
from tests.support.samples import make_id_number, make_record

OWNER = "/api/v1/owner"


def new_owner(client, ip="203.0.113.9"):
    phone = "139" + str(uuid.uuid4().int)[:8]
    r = client.post(
        f"{OWNER}/accounts", json={"phone": phone, "password": "correct horse", "display_name": "李先生"}
    )
    assert r.status_code == 201, r.text
    tok = client.post(
        f"{OWNER}/token", json={"phone": phone, "password": "correct horse"}, headers={"X-Real-IP": ip}
    )
    assert tok.status_code == 200, tok.text
    return phone, {"Authorization": f"Bearer {tok.json()['access_token']}"}


def standin_registry(client) -> StandInRegistry:
    """The session app's vehicle-registration stand-in, installed on first use (as the setting
    vehicle_registry_standin_file would); a test of the app without a registry patches it away."""
    rt = client.app.state.runtime
    if not isinstance(rt.registry, StandInRegistry):
        rt.registry = StandInRegistry(Path(tempfile.mkdtemp()) / "registry.json")
    return rt.registry


def verify_full(client, headers, vin: str, plate: str = "苏A12345") -> tuple[str, str]:
    """Register `vin` to a new person in the stand-in and prove it as the owner of `headers`: the
    whole history. Returns the (name, ID number) used."""
    name, id_number = "车主" + uuid.uuid4().hex[:4], make_id_number()
    standin_registry(client).register(vin, plate, name, id_number)
    r = client.post(
        f"{OWNER}/vehicles/{vin}/verification",
        json={"plate_no": plate, "owner_name": name, "id_number": id_number},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["full_history"] is True
    return name, id_number


def test_history_needs_a_verified_vehicle_and_shows_latest_versions_only(client, engine, vin):
    a, b = Shop(client), Shop(client)
    today = date.today()
    first = a.upload(make_record("A-1", vin, settle=today - timedelta(days=60), mileage=10000)).json()
    a.upload(
        make_record("A-1", vin, settle=today - timedelta(days=60), mileage=10000, fault="更正：刹车异响")
    )
    b.upload(make_record("B-7", vin, settle=today - timedelta(days=5), mileage=15000))
    gone = a.upload(make_record("A-2", vin, settle=today - timedelta(days=20), mileage=12000)).json()
    a.client.post(
        f"/api/v1/collection/records/{gone['record_id']}/withdraw",
        json={"reason": "重复录入"},
        headers=a.headers,
    )
    a.upload(make_record("A-3", "LSVAM4187C2184847"))  # another car's record never shows up

    _, h = new_owner(client)
    r = client.get(f"{OWNER}/vehicles/{vin}/history", headers=h)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "VEHICLE_NOT_BOUND")
    r = client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": "ABCDEFGHJK"}, headers=h)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "QUERY_CODE_INVALID")
    code = first["query_code"]
    r = client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": code.lower()}, headers=h)
    assert r.status_code == 201, r.text
    assert client.get(f"{OWNER}/vehicles", headers=h).json() == [vin]
    # a code shows the records of the shop that printed it; the whole file needs the registry check
    hist = client.get(f"{OWNER}/vehicles/{vin}/history", headers=h).json()
    assert [x["settlement_no"] for x in hist["records"]] == ["A-1"] and hist["full_history"] is False
    verify_full(client, h, vin)

    hist = client.get(f"{OWNER}/vehicles/{vin}/history", headers=h)
    assert hist.status_code == 200, hist.text
    recs = hist.json()["records"]
    assert [x["settlement_no"] for x in recs] == ["B-7", "A-1"]  # newest first, withdrawn hidden
    assert recs[1]["version"] == 2 and recs[1]["fault_description"] == "更正：刹车异响"
    assert recs[0]["enterprise_name"] == b.profile["name"]
    assert recs[1]["repair_type_name"] == "小修"

    with engine.connect() as conn:
        audit = conn.execute(
            sa.text(
                "SELECT actor_kind, action, subject, request_id FROM audit.event"
                " WHERE subject = :v AND outcome = 'success' ORDER BY seq"
            ),
            {"v": vin},
        ).all()
    assert [a[1] for a in audit] == [
        "vehicle_history",
        "vehicle.registry_check",
        "vehicle.full_binding",
        "vehicle_history",
    ]
    assert audit[-1][:3] == ("owner", "vehicle_history", vin) and audit[-1][3]


def test_a_code_binds_only_its_own_car(client, vin):
    shop = Shop(client)
    code = shop.upload(make_record("Q-1", vin)).json()["query_code"]
    other_vin = "LSVAM4187C2184847"
    shop.upload(make_record("Q-2", other_vin))
    _, h = new_owner(client)
    r = client.post(f"{OWNER}/vehicles", json={"vin": other_vin, "query_code": code}, headers=h)
    assert r.json()["error"]["code"] == "QUERY_CODE_INVALID"


def test_owner_accounts_rules(client):
    phone, _ = new_owner(client)
    r = client.post(f"{OWNER}/accounts", json={"phone": phone, "password": "another pass"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "OWNER_EXISTS")
    r = client.post(f"{OWNER}/accounts", json={"phone": "12345", "password": "long enough"})
    assert r.json()["error"]["code"] == "PHONE_FORMAT"
    r = client.post(f"{OWNER}/accounts", json={"phone": "13900000001", "password": "short"})
    assert r.json()["error"]["code"] == "PASSWORD_WEAK"
    ip = {"X-Real-IP": "203.0.113.77"}
    for _ in range(5):
        r = client.post(f"{OWNER}/token", json={"phone": phone, "password": "nope nope"}, headers=ip)
        assert r.json()["error"]["code"] == "AUTH_INVALID_CREDENTIALS"
    r = client.post(f"{OWNER}/token", json={"phone": phone, "password": "correct horse"}, headers=ip)
    assert (r.status_code, r.json()["error"]["code"]) == (429, "AUTH_RATE_LIMITED")


def test_query_code_guessing_is_throttled(client, vin):
    shop = Shop(client)
    code = shop.upload(make_record("G-1", vin)).json()["query_code"]
    _, h = new_owner(client)
    for _ in range(5):
        client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": "WRONGCODE2"}, headers=h)
    r = client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": code}, headers=h)
    assert (r.status_code, r.json()["error"]["code"]) == (429, "AUTH_RATE_LIMITED")


def test_enterprise_tokens_cannot_read_histories(client, vin):
    shop = Shop(client)
    shop.upload(make_record("E-1", vin))
    r = client.get(f"{OWNER}/vehicles/{vin}/history", headers=shop.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "TOKEN_INVALID")
