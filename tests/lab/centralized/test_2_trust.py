"""The trust model (docs/security-baseline.md, 威胁模型) on the deployed province, attacked as the issue
found it: from outside, through the load balancer, with nothing but the public endpoints, the
attacker tries to read the whole history of a car whose VIN it read off the windscreen."""

import json
import time
import uuid

import httpx

from tests.lab import deploy_checks as checks
from tests.lab.centralized.conftest import PROFILE
from tests.support.samples import make_enterprise, make_record

OWNER = "/api/v1/owner"


def _national(c: httpx.Client, path: str, req_info: dict) -> dict:
    body = {"transaction": {"header": {"date": time.strftime("%Y%m%d"), "time": time.strftime("%H%M%S")},
                            "body": {"reqInfo": req_info}}}
    r = c.post(f"/api/national/{path}", content=json.dumps(body, ensure_ascii=False).encode(),
               headers={"Content-Type": "text/html"})
    assert r.status_code == 200, r.text
    return r.json()["respInfo"]


def test_anonymous_attacker_cannot_read_a_cars_history_through_the_load_balancer(centralized):
    lb = str(centralized.prof.host("lb1").address)
    victim = checks.smoke(lb, PROFILE)  # a licensed shop's repair of the car, uploaded as usual
    vin = victim["vin"]
    with httpx.Client(base_url=f"https://{lb}", verify=str(checks.ca_file(PROFILE)), timeout=30) as c:
        # 1. a self-registered "enterprise" gets its credential, but no token and no upload
        fake = make_enterprise(name="冒名汽车维修")
        r = c.post("/api/v1/collection/enterprises", json=fake)
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        cred = r.json()
        r = c.post("/api/v1/collection/token", json={"key_id": cred["key_id"], "secret": cred["secret"]})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "ENTERPRISE_PENDING"), r.text
        r = c.post("/api/v1/collection/records", json=make_record("FAKE-1", vin))
        assert r.status_code == 401, r.text
        # the same through the national interface: "待审核" in its envelope, no token
        other = make_enterprise()
        info = _national(c, "carhealth/register", {
            "companyname": other["name"], "companypassword": "shop-pass-123",
            "companyroadtransportationlicense": other["licence_no"],
            "companyunifiedsocialcreditidentifier": other["uscc"], "companycategory": "1",
            "companyadministrativedivisioncode": "320102"})
        assert info["status"] == "pending" and "待审核" in info["message"], info
        tok = _national(c, "carhealth/token", {"companycode": info["companycode"],
                                                "companypassword": "shop-pass-123"})
        assert tok["errcode"] == "ENTERPRISE_PENDING" and "access_token" not in tok, tok

        # 2.-3. even a licensed shop's own code for the car shows that shop's records alone
        shop = make_enterprise(name="持证但越权汽修")
        checks.licence(checks.app_host_behind(PROFILE, lb), shop)
        r = c.post("/api/v1/collection/enterprises", json=shop)
        assert r.status_code == 201 and r.json()["status"] == "active", r.text
        cred = r.json()
        r = c.post("/api/v1/collection/token", json={"key_id": cred["key_id"], "secret": cred["secret"]})
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = c.post("/api/v1/collection/records", json=make_record("MINE-1", vin), headers=auth)
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        code = r.json()["query_code"]
        phone = "139" + str(uuid.uuid4().int)[:8]
        r = c.post(f"{OWNER}/accounts", json={"phone": phone, "password": "correct horse"})
        assert r.status_code == 201, r.text
        r = c.post(f"{OWNER}/token", json={"phone": phone, "password": "correct horse"})
        owner = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = c.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": code}, headers=owner)
        assert r.status_code == 201, r.text
        r = c.get(f"{OWNER}/vehicles/{vin}/history", headers=owner)
        assert r.status_code == 200, r.text
        assert [x["settlement_no"] for x in r.json()["records"]] == ["MINE-1"], r.text
        assert r.json()["full_history"] is False
        # the victim shop's repair stays out of sight, and so do its rating and complaint
        scores = dict.fromkeys(("attitude", "quality", "efficiency", "transparency", "environment"), 1)
        r = c.post(f"{OWNER}/records/{victim['record_id']}/rating", json=scores, headers=owner)
        assert r.status_code == 404, r.text
