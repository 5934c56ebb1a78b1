import json
import time

from tests.app.conftest import import_roster
from tests.support.samples import make_enterprise, make_vin, roster_row

BASE = "/api/national"


def envelope(req_info: dict) -> bytes:
    return json.dumps(
        {
            "transaction": {
                "header": {"date": time.strftime("%Y%m%d"), "time": time.strftime("%H%M%S")},
                "body": {"reqInfo": req_info},
            }
        },
        ensure_ascii=False,
    ).encode()


def call(client, path, req_info):
    # shop software labels its JSON as text/html; the adapter must not care
    r = client.post(f"{BASE}/{path}", content=envelope(req_info), headers={"Content-Type": "text/html"})
    assert r.status_code == 200, r.text
    return r.json()["respInfo"]


def register(client, licence=None):
    """A licensed shop's software: the shop is put on the licence roster first (by `licence`, or on
    the test app's own database), so its registration is approved at once."""
    e = make_enterprise()
    row = roster_row({**e, "category": "2"})
    licence(row) if licence else import_roster(client, row)
    info = call(
        client,
        "carhealth/register",
        {
            "companyname": e["name"],
            "companypassword": "shop-pass-123",
            "companyroadtransportationlicense": e["licence_no"],
            "companyunifiedsocialcreditidentifier": e["uscc"],
            "companyaddress": e["address"],
            "companypostalcode": "210000",
            "companyeconomiccategory": "私营",
            "companycategory": "2",
            "companylinkmanname": "张三",
            "companylinkmantel": "13800000000",
            "companyadministrativedivisioncode": "320102",
            "companyoperationstate": "营业",
        },
    )
    assert info["code"] == "1" and info["status"] == "active", info
    tok = call(
        client, "carhealth/token", {"companycode": info["companycode"], "companypassword": "shop-pass-123"}
    )
    assert tok["code"] == "1", tok
    return info["companycode"], tok["access_token"]


def record_info(token, vin, costlist="CL-0001", vin_override=None, **basic):
    return {
        "access_token": token,
        "basicInfo": {
            "vehicleplatenumber": "苏AD12345",
            "vin": vin_override or vin,
            "companyname": "x",
            "repairdate": "20240301",
            "repairmileage": "52000",
            "faultdescription": "空调不制冷",
            "settledate": "20240302",
            "costlistcode": costlist,
            **basic,
        },
        "vehiclepartslist": [{"partsname": "冷媒", "partscode": "R134A", "partsquantity": "1"}],
        "repairprojectlist": [{"repairproject": "空调检修", "workinghours": "2"}],
    }


def test_time_endpoint(client):
    for path in ("time", "carhealth/time"):
        for method in ("get", "post"):
            r = getattr(client, method)(f"{BASE}/{path}")
            assert r.status_code == 200 and abs(int(r.text) - time.time() * 1000) < 60_000


def test_register_token_record_round_trip_and_idempotency(client):
    _, token = register(client)
    vin = make_vin()
    first = call(client, "carhealth/record", record_info(token, vin))
    assert first["code"] == "1" and first["outcome"] == "created" and len(first["querycode"]) == 10
    again = call(client, "carhealth/record", record_info(token, vin))
    assert again["code"] == "1" and again["outcome"] == "unchanged" and again["recordid"] == first["recordid"]
    changed = call(client, "carhealth/record", record_info(token, vin, repairmileage="52001"))
    assert changed["outcome"] == "updated" and changed["version"] == 2


def test_errors_in_their_shape_with_their_field_names(client):
    _, token = register(client)
    bad = call(
        client,
        "carhealth/record",
        record_info(token, "", vin_override="LSVAM4188C2184847", settledate="20240230"),
    )
    assert bad["code"] == "0" and bad["errcode"] == "VALIDATION_FAILED"
    got = {(e["field"], e["code"]) for e in bad["errors"]}
    assert got == {("basicInfo.vin", "VIN_CHECK_DIGIT"), ("basicInfo.settledate", "DATE_FORMAT")}
    assert "车辆识别代号" in bad["message"]
    assert call(client, "carhealth/record", {"access_token": "nope"})["errcode"] == "TOKEN_INVALID"
    assert call(client, "carhealth/record", {})["errcode"] == "AUTH_REQUIRED"
    assert (
        call(client, "carhealth/token", {"companycode": "EKNOPE", "companypassword": "x"})["errcode"]
        == "AUTH_INVALID_CREDENTIALS"
    )
    r = client.post(f"{BASE}/carhealth/record", content=b"<html>", headers={"Content-Type": "text/html"})
    assert r.json()["respInfo"]["errcode"] == "MALFORMED_JSON"


def test_register_validation_and_duplicates(client):
    e = make_enterprise()
    base = {
        "companyname": e["name"],
        "companypassword": "shop-pass-123",
        "companyunifiedsocialcreditidentifier": e["uscc"],
        "companyadministrativedivisioncode": "320102",
    }
    assert call(client, "carhealth/register", base)["code"] == "1"
    assert call(client, "carhealth/register", base)["errcode"] == "ENTERPRISE_EXISTS"
    bad = call(
        client, "carhealth/register", {**base, "companyunifiedsocialcreditidentifier": "91350100M000100Y44"}
    )
    assert bad["errors"][0] == {
        "field": "companyunifiedsocialcreditidentifier",
        "code": "USCC_CHECK_CHAR",
        "message": bad["errors"][0]["message"],
    }
    assert call(client, "carhealth/register", {**base, "companypassword": "1"})["errcode"] == "PASSWORD_WEAK"


def test_records_from_both_doors_land_in_one_history(client):
    from tests.app.conftest import Shop
    from tests.app.test_api_owner import verify_full
    from tests.support.samples import make_record

    _, token = register(client)
    vin = make_vin()
    national = call(client, "carhealth/record", record_info(token, vin))
    Shop(client).upload(make_record("OWN-1", vin))
    phone = "137" + str(time.time_ns())[-8:]
    client.post("/api/v1/owner/accounts", json={"phone": phone, "password": "password1"})
    tok = client.post("/api/v1/owner/token", json={"phone": phone, "password": "password1"}).json()[
        "access_token"
    ]
    h = {"Authorization": f"Bearer {tok}"}
    assert (
        client.post(
            "/api/v1/owner/vehicles", json={"vin": vin, "query_code": national["querycode"]}, headers=h
        ).status_code
        == 201
    )
    verify_full(client, h, vin)  # a code shows its own shop's records; the two shops' need the whole file
    recs = client.get(f"/api/v1/owner/vehicles/{vin}/history", headers=h).json()["records"]
    assert sorted(r["settlement_no"] for r in recs) == ["CL-0001", "OWN-1"]
