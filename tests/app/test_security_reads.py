"""Data-use rules in the one read service: region scope, owner grants, public view, owner data."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from app.domain.errors import AppError
from app.security.rbac import PUBLIC, Principal, Role
from app.services.reads import ReadService
from tests.app.conftest import Shop, new_staff
from tests.app.test_api_owner import new_owner, verify_full
from tests.support.samples import make_record

OWNER = "/api/v1/owner"
REG = "/api/v1/regulator"


class RegionShop(Shop):
    def __init__(self, client, region: str) -> None:
        super().__init__(client, region_code=region)


def read(client, who: Principal, vin: str):
    rt = client.app.state.runtime
    with rt.db.transaction() as s:
        return ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin)


def denied(client, who: Principal, vin: str) -> str:
    with pytest.raises(AppError) as e:
        read(client, who, vin)
    return e.value.code


def test_regulators_see_only_their_region(client, admins, vin):
    nanjing, wuxi = RegionShop(client, "320102"), RegionShop(client, "320202")
    nanjing.upload(make_record("NJ-1", vin, settle=date.today() - timedelta(days=9)))
    wuxi.upload(make_record("WX-1", vin))
    city = new_staff(client, admins, Role.REGULATOR, "320100")
    province = new_staff(client, admins, Role.REGULATOR, "320000")
    other = new_staff(client, admins, Role.REGULATOR, "330000")
    for who in (city, province, other):
        assert who.login().status_code == 200
    seen = client.get(f"{REG}/vehicles/{vin}/history", headers=city.headers).json()
    assert [r["settlement_no"] for r in seen["records"]] == ["NJ-1"]
    seen = client.get(f"{REG}/vehicles/{vin}/history", headers=province.headers).json()
    assert {r["settlement_no"] for r in seen["records"]} == {"NJ-1", "WX-1"}
    seen = client.get(f"{REG}/vehicles/{vin}/history", headers=other.headers).json()
    assert seen["records"] == [] and seen["vehicle"] is None
    r = client.get(f"{REG}/enterprises/{wuxi.profile['uscc']}", headers=city.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "REGION_FORBIDDEN")
    r = client.get(f"{REG}/enterprises/{nanjing.profile['uscc']}", headers=city.headers)
    assert r.status_code == 200 and r.json()["contact_name"] == nanjing.profile["contact_name"]
    # an administrator is not a regulator
    r = client.get(f"{REG}/vehicles/{vin}/history", headers=admins[Role.SYSTEM_ADMIN].headers)
    assert r.json()["error"]["code"] == "FORBIDDEN"


def test_enterprises_read_histories_only_under_an_unexpired_owner_grant(client, engine, vin):
    a, b = Shop(client), Shop(client)
    code = a.upload(make_record("GA-1", vin, settle=date.today() - timedelta(days=30))).json()["query_code"]
    b.upload(make_record("GB-1", vin))
    _, h = new_owner(client)
    assert (
        client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": code}, headers=h).status_code == 201
    )
    user_b = Principal(Role.ENTERPRISE_USER, 1, enterprise_id=b.enterprise_id)
    assert denied(client, user_b, vin) == "AUTHORIZATION_REQUIRED"
    verify_full(client, h, vin)  # only the car's proven owner may open its file to a shop

    grant = {"enterprise_uscc": b.profile["uscc"], "days": 31}
    r = client.post(f"{OWNER}/vehicles/{vin}/grants", json=grant, headers=h)
    assert r.json()["error"]["code"] == "GRANT_DAYS_INVALID"
    r = client.post(f"{OWNER}/vehicles/{vin}/grants", json={**grant, "days": 7}, headers=h)
    assert r.status_code == 201, r.text
    grant_id = r.json()["grant_id"]

    recs = read(client, user_b, vin)["records"]
    names = {r["settlement_no"]: (r["enterprise_name"], r["enterprise_uscc"]) for r in recs}
    assert names["GB-1"] == (b.profile["name"], b.profile["uscc"])
    assert names["GA-1"] == (None, None)  # never another enterprise's identity

    user_a = Principal(Role.ENTERPRISE_USER, 2, enterprise_id=a.enterprise_id)
    assert denied(client, user_a, vin) == "AUTHORIZATION_REQUIRED"  # the grant was for b only

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE personal.history_grant SET expires_at = now() - interval '1 second' WHERE id = :i"
            ),
            {"i": grant_id},
        )
    assert denied(client, user_b, vin) == "AUTHORIZATION_EXPIRED"
    r = client.post(f"{OWNER}/vehicles/{vin}/grants", json={**grant, "days": 1}, headers=h)
    assert client.delete(f"{OWNER}/grants/{r.json()['grant_id']}", headers=h).status_code == 204
    assert denied(client, user_b, vin) == "AUTHORIZATION_EXPIRED"

    with engine.connect() as conn:
        refusals = (
            conn.execute(
                sa.text(
                    "SELECT detail->>'reason' FROM audit.event WHERE subject = :v AND outcome = 'failure'"
                    " AND actor_kind = 'enterprise_user'"
                ),
                {"v": vin},
            )
            .scalars()
            .all()
        )
    assert refusals.count("AUTHORIZATION_REQUIRED") == 2 and refusals.count("AUTHORIZATION_EXPIRED") == 2


def test_public_and_upload_clients_see_no_histories(client, vin):
    shop = Shop(client)
    shop.upload(make_record("P-1", vin))
    r = client.get(f"/api/v1/public/enterprises/{shop.profile['uscc']}")
    assert r.status_code == 200 and r.json()["name"] == shop.profile["name"]
    assert "contact_phone" not in r.json() and "contact_name" not in r.json()
    assert denied(client, PUBLIC, vin) == "FORBIDDEN"
    client_principal = Principal(Role.ENTERPRISE_CLIENT, 1, enterprise_id=shop.enterprise_id)
    assert denied(client, client_principal, vin) == "FORBIDDEN"


def test_owner_personal_data_is_encrypted_and_reads_are_audited(client, engine):
    phone, h = new_owner(client)
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    "SELECT o.* FROM personal.owner_account o"
                    " JOIN audit.event e ON e.subject = 'owner:' || o.id"
                    " WHERE e.action = 'owner.login' ORDER BY o.id DESC LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
    assert "phone" not in row and "display_name" not in row
    assert all(phone.encode() not in bytes(v) for v in row.values() if isinstance(v, bytes | memoryview))
    me = client.get(f"{OWNER}/profile", headers=h).json()
    assert (me["phone"], me["name"], me["id_number"]) == (phone, "李先生", None)

    id_number = "11010519491231002X"
    body = {"phone": "137" + phone[3:], "password": "long enough", "id_number": id_number.lower()}
    assert client.post(f"{OWNER}/accounts", json=body).status_code == 201
    r = client.post(f"{OWNER}/accounts", json={**body, "phone": "136" + phone[3:]})
    assert r.json()["error"]["code"] == "ID_NUMBER_EXISTS"  # found through its keyed hash
    r = client.post(
        f"{OWNER}/accounts", json={**body, "phone": "135" + phone[3:], "id_number": "110105194912310021"}
    )
    assert r.json()["error"]["code"] == "ID_NUMBER_FORMAT"
    with engine.connect() as conn:
        reads = conn.execute(
            sa.text("SELECT count(*) FROM audit.event WHERE action = 'personal_read' AND subject = :s"),
            {"s": f"owner:{me['owner_id']}"},
        ).scalar()
    assert reads == 1
