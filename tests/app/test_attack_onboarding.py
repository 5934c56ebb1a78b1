"""Attacks on enterprise onboarding (issue 15, point 1): whoever registers an "enterprise" through the
public endpoints must not get a token, upload, or be listed until a regulator of its region approves
it or the province's licence roster vouches for it; a licence revoked in the roster stops it at once.

Each test is named for the attacker's goal (or the rule) and must be refused."""

import csv
import io
import uuid
from datetime import date, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import Workbook

from tests.app.conftest import Shop, import_roster, regulator
from tests.app.test_admin_cli import app_admin
from tests.app.test_api_national import call
from tests.app.test_processes import env_for
from tests.support.samples import make_enterprise, make_record, make_vin, roster_row

COLLECTION = "/api/v1/collection"
REG = "/api/v1/regulator"


def register(client, **profile) -> dict:
    """The answer to a registration, with the USCC registered (the attacker knows it, having sent it)."""
    body = {**make_enterprise(), **profile}
    r = client.post(f"{COLLECTION}/enterprises", json=body)
    assert r.status_code == 201, r.text
    return {**r.json(), "uscc": body["uscc"]}


def token(client, cred: dict):
    return client.post(f"{COLLECTION}/token", json={"key_id": cred["key_id"], "secret": cred["secret"]})


def events(engine, subject: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT actor_kind, actor_id, action, detail FROM audit.event WHERE subject = :s"
                        " ORDER BY seq"),
                {"s": subject},
            )
        ]  # fmt: skip


def listed(client, name: str) -> list[str]:
    return [
        e["name"] for e in client.get("/api/v1/public/enterprises", params={"name": name}).json()["items"]
    ]


def test_self_registered_enterprise_cannot_get_a_token_upload_or_be_listed(client):
    name = f"冒名汽修{uuid.uuid4().hex[:6]}"
    cred = register(client, name=name)
    r = token(client, cred)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ENTERPRISE_PENDING"), r.text
    assert "待审核" in r.json()["error"]["message"]
    # no token, no upload
    r = client.post(f"{COLLECTION}/records", json=make_record("ATK-1", make_vin()))
    assert r.status_code == 401
    # not in the public directory, and its page is as unknown as a USCC never registered
    assert listed(client, name) == []
    assert client.get(f"/api/v1/public/enterprises/{cred['uscc']}").status_code == 404
    # the credential came back once (the software keeps it), marked pending
    assert cred["status"] == "pending" and cred["secret"] and cred["key_id"], cred
    assert "待" in cred["message"]
    # it can ask where it stands
    r = client.post(
        f"{COLLECTION}/enterprises/status", json={"key_id": cred["key_id"], "secret": cred["secret"]}
    )
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["status_name"] == "待审核"
    wrong = client.post(f"{COLLECTION}/enterprises/status", json={"key_id": cred["key_id"], "secret": "x"})
    assert wrong.status_code == 401


def national_register(client, **override) -> dict:
    e = make_enterprise()
    info = {
        "companyname": e["name"],
        "companypassword": "shop-pass-123",
        "companyroadtransportationlicense": e["licence_no"],
        "companyunifiedsocialcreditidentifier": e["uscc"],
        "companycategory": "1",
        "companyadministrativedivisioncode": "320102",
        **override,
    }
    return call(client, "carhealth/register", info)


def test_national_registration_answers_pending_and_gives_no_token(client):
    info = national_register(client)
    tok = call(
        client, "carhealth/token", {"companycode": info["companycode"], "companypassword": "shop-pass-123"}
    )
    assert tok["code"] == "0" and tok["errcode"] == "ENTERPRISE_PENDING" and "待审核" in tok["message"], tok
    assert "access_token" not in tok
    # registration taken (the software must keep its companycode), clearly pending approval
    assert info["code"] == "1" and info["companycode"] and info["status"] == "pending", info
    assert "待审核" in info["message"] and "pending approval" in info["message"]


def test_regulator_of_another_region_cannot_approve(client, admins, engine):
    cred = register(client, region_code="320602", name=f"南通待审汽修{uuid.uuid4().hex[:6]}")
    uscc = cred["uscc"]
    assert token(client, cred).status_code == 403  # pending
    elsewhere = regulator(client, admins, "320400")  # 常州: not the enterprise's region
    r = client.post(f"{REG}/enterprises/{uscc}/review", json={"approve": True}, headers=elsewhere.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "REGION_FORBIDDEN"), r.text
    assert uscc not in [e["uscc"] for e in client.get(f"{REG}/enterprises", headers=elsewhere.headers).json()]
    assert token(client, cred).status_code == 403
    # nor an owner, nor anyone without a staff session
    assert client.post(f"{REG}/enterprises/{uscc}/review", json={"approve": True}).status_code == 401

    home = regulator(client, admins, "320600")  # 南通市: the enterprise's city
    pending = client.get(f"{REG}/enterprises", headers=home.headers).json()
    assert uscc in [e["uscc"] for e in pending]
    r = client.post(f"{REG}/enterprises/{uscc}/review", json={"approve": True}, headers=home.headers)
    assert r.status_code == 200 and r.json() == {"status": "active"}, r.text
    tok = token(client, cred)
    assert tok.status_code == 200, tok.text
    auth = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    assert (
        client.post(f"{COLLECTION}/records", json=make_record("OK-1", make_vin()), headers=auth).status_code
        == 200
    )
    # reviewed once: a second review is refused
    again = client.post(
        f"{REG}/enterprises/{uscc}/review", json={"approve": False, "reason": "x"}, headers=home.headers
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ENTERPRISE_STATE")
    ent_id = cred["enterprise_id"]
    acts = [(kind, actor, action) for kind, actor, action, _ in events(engine, f"enterprise:{ent_id}")]
    assert acts == [
        ("public", uscc, "enterprise.register"),
        ("regulator", str(home.staff_id), "enterprise.approve"),
    ]


def test_refusal_needs_a_reason_is_audited_and_the_enterprise_is_told(client, admins, engine):
    cred = register(client, region_code="320602")
    uscc = cred["uscc"]
    assert token(client, cred).status_code == 403  # pending
    reg = regulator(client, admins, "320602")
    r = client.post(f"{REG}/enterprises/{uscc}/review", json={"approve": False}, headers=reg.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "REASON_REQUIRED")
    reason = "许可证号与道路运政系统记录不符，请携营业执照和许可证到区交通运输局核验"
    r = client.post(
        f"{REG}/enterprises/{uscc}/review", json={"approve": False, "reason": reason}, headers=reg.headers
    )
    assert r.json() == {"status": "refused"}
    told = client.post(
        f"{COLLECTION}/enterprises/status", json={"key_id": cred["key_id"], "secret": cred["secret"]}
    )
    assert told.json()["status"] == "refused" and told.json()["status_reason"] == reason
    tok = token(client, cred)
    assert tok.status_code == 403 and tok.json()["error"]["code"] == "ENTERPRISE_REFUSED"
    assert reason in tok.json()["error"]["message"]
    refused = [
        e for e in events(engine, f"enterprise:{cred['enterprise_id']}") if e[2] == "enterprise.refuse"
    ]
    assert refused == [
        ("regulator", str(reg.staff_id), "enterprise.refuse", {"uscc": uscc, "reason": reason})
    ]


def test_roster_listed_enterprise_is_approved_at_registration_but_not_its_impersonator(client, engine):
    licensed = make_enterprise(name=f"名册内汽修{uuid.uuid4().hex[:6]}")
    report = import_roster(client, roster_row(licensed))
    assert report.imported == 1 and not report.bad
    # USCCs are public: someone else's USCC with another licence number (or region) waits for review
    fake = register(client, **{**licensed, "licence_no": "伪造许可证号"})
    assert token(client, fake).status_code == 403
    assert fake["status"] == "pending"

    other = make_enterprise(name=f"名册内汽修{uuid.uuid4().hex[:6]}")
    import_roster(client, roster_row(other))
    cred = register(client, **other)
    assert cred["status"] == "active", cred
    assert token(client, cred).status_code == 200
    assert listed(client, other["name"]) == [other["name"]]
    acts = events(engine, f"enterprise:{cred['enterprise_id']}")
    assert [(a[2], a[3]["via"]) for a in acts] == [("enterprise.register", "roster")]


def test_revoked_licence_in_reimported_roster_suspends_and_its_live_token_stops(client, engine):
    shop = Shop(client, name=f"将被吊销汽修{uuid.uuid4().hex[:6]}")
    assert shop.upload(make_record("LIVE-1", make_vin())).status_code == 200
    report = import_roster(client, roster_row(shop.profile, status="吊销"))
    # the token issued before the suspension stops working at once
    r = shop.upload(make_record("LIVE-2", make_vin()))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ENTERPRISE_SUSPENDED"), r.text
    assert report.suspended == [shop.profile["uscc"]]
    assert "吊销" in r.json()["error"]["message"]
    assert client.get(f"{COLLECTION}/credentials", headers=shop.headers).status_code == 403
    # and no new one is issued, through either door
    assert shop.get_token().json()["error"]["code"] == "ENTERPRISE_SUSPENDED"
    assert listed(client, shop.profile["name"]) == []
    suspended = [
        e for e in events(engine, f"enterprise:{shop.enterprise_id}") if e[2] == "enterprise.suspend"
    ]
    assert (
        len(suspended) == 1
        and suspended[0][0] == "operator"
        and suspended[0][3]["licence_status"] == "revoked"
    )
    # the licence back in force in a later roster: reinstated
    report = import_roster(client, roster_row(shop.profile))
    assert report.reinstated == [shop.profile["uscc"]]
    assert shop.upload(make_record("LIVE-3", make_vin())).status_code == 200


def test_an_expired_licence_suspends_too(client):
    shop = Shop(client)
    report = import_roster(
        client, roster_row(shop.profile, valid_until=str(date.today() - timedelta(days=2)))
    )
    assert shop.upload(make_record("EXP-1", make_vin())).status_code == 403
    assert report.suspended == [shop.profile["uscc"]]


def test_roster_import_reports_bad_rows_and_imports_the_good(client):
    good = roster_row(make_enterprise())
    rows = [
        good,
        {**roster_row(make_enterprise()), "统一社会信用代码": "91350100M000100Y44"},  # check character
        {**roster_row(make_enterprise()), "经营类别": "四类", "所在地区": "329999"},
        {**roster_row(make_enterprise()), "许可状态": "不知道", "有效期至": "明年"},
        {**roster_row(make_enterprise()), "企业名称": ""},
        good,  # the same USCC twice
    ]
    report = import_roster(client, *rows)
    assert report.imported == 1
    assert [line for line, _ in report.bad] == [3, 4, 5, 6, 7]
    reasons = dict(report.bad)
    assert "校验位" in reasons[3][0]
    assert len(reasons[4]) == 2 and "经营类别" in reasons[4][0] and "所在地区" in reasons[4][1]
    assert "许可状态" in reasons[5][0] and "有效期至" in reasons[5][1]
    assert reasons[6] == ["企业名称: 必填"]
    assert "第 2 行重复" in reasons[7][0]


def test_roster_import_command_reads_csv_and_xlsx(settings, tmp_path, client):
    env = env_for(settings)
    a, b = make_enterprise(name="表格导入汽修甲"), make_enterprise(name="表格导入汽修乙")
    rows = [roster_row(a), {**roster_row(b), "许可证号": ""}]
    path = tmp_path / "名册.csv"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("gb18030"))  # as exported by Chinese office software
    r = app_admin(env, "roster", "import", str(path), password="")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "名册.csv 第 3 行：许可证号: 必填" in r.stderr and "导入 1 行，错误 1 行" in r.stdout
    assert register(client, **a)["status"] == "active"

    wb = Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    c = make_enterprise(name="表格导入汽修丙")
    ws.append([*list(roster_row(c).values())[:6], date(2099, 1, 1)])  # a date cell, as spreadsheets hold them
    xlsx = tmp_path / "roster.xlsx"
    wb.save(xlsx)
    r = app_admin(env, "roster", "import", str(xlsx), password="")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert register(client, **c)["status"] == "active"

    (tmp_path / "bad.xlsx").write_bytes(b"not a workbook")
    assert app_admin(env, "roster", "import", str(tmp_path / "bad.xlsx"), password="").returncode == 2
    headless = tmp_path / "headless.csv"
    headless.write_text("a,b\n1,2\n", encoding="utf-8")
    r = app_admin(env, "roster", "import", str(headless), password="")
    assert r.returncode == 2 and "缺少列" in r.stderr


def test_coverage_is_uploading_over_licensed_per_category_and_region(client, admins):
    # 常州: no other test licenses enterprises there
    licensed = [
        make_enterprise(name=f"常州汽修{i}") | {"region_code": region, "category": cat}
        for i, (region, cat) in enumerate([("320402", "1"), ("320402", "1"), ("320404", "2")])
    ]
    import_roster(client, *(roster_row(e) for e in licensed))
    revoked = make_enterprise(name="常州吊销汽修") | {"region_code": "320404", "category": "2"}
    import_roster(client, roster_row(revoked, status="注销"))  # not licensed: not in the denominator
    uploader = Shop(client, **licensed[0])
    assert uploader.upload(make_record("COV-1", make_vin())).status_code == 200
    today = date.today().isoformat()
    reg = regulator(client, admins, "320400")
    stats = client.get(f"{REG}/statistics", params={"start": today, "end": today}, headers=reg.headers).json()
    assert stats["licence_coverage"] == {"licensed": 3, "uploading": 1, "coverage": "33.3"}
    by_cat = {r["category"]: r for r in stats["tables"]["coverage_by_category"]}
    assert (by_cat["1"]["licensed"], by_cat["1"]["uploading"], by_cat["1"]["coverage"]) == (2, 1, "50.0")
    assert (by_cat["1"]["target"], by_cat["1"]["met"]) == ("≥ 90%", "否")
    assert (by_cat["2"]["coverage"], by_cat["2"]["target"], by_cat["2"]["met"]) == ("0.0", "> 80%", "否")
    by_region = {r["region_code"]: r for r in stats["tables"]["coverage_by_region"]}
    assert (by_region["320402"]["licensed"], by_region["320402"]["coverage"]) == (2, "50.0")
    assert (by_region["320404"]["licensed"], by_region["320404"]["coverage"]) == (1, "0.0")
    # limited to the regulator's region: a county regulator sees its county only
    county = regulator(client, admins, "320404")
    mine = client.get(
        f"{REG}/statistics", params={"start": today, "end": today}, headers=county.headers
    ).json()
    assert mine["licence_coverage"] == {"licensed": 1, "uploading": 0, "coverage": "0.0"}
    r = client.get(
        f"{REG}/statistics", params={"start": today, "end": today, "region": "320402"}, headers=county.headers
    )
    assert r.status_code == 403


def test_regulator_approves_on_the_portal_page(client, admins, engine):
    name = f"页面审核汽修{uuid.uuid4().hex[:6]}"
    cred = register(client, region_code="320602", name=name)
    assert token(client, cred).status_code == 403  # pending
    reg = regulator(client, admins, "320602")
    web = TestClient(client.app)
    r = web.post(
        "/staff/login", data={"username": reg.username, "password": reg.password, "totp_code": reg.code(1)}
    )
    assert r.status_code == 200, r.text
    assert "企业注册审核" in web.get("/regulator").text
    page = web.get("/regulator/enterprises")
    assert page.status_code == 200 and name in page.text
    uscc = cred["uscc"]
    r = web.post(f"/regulator/enterprises/{uscc}/review", data={"decision": "reject", "reason": ""})
    assert r.status_code == 422 and "不通过时须填写原因" in r.text
    r = web.post(
        f"/regulator/enterprises/{uscc}/review", data={"decision": "approve"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert name not in web.get("/regulator/enterprises").text
    assert token(client, cred).status_code == 200
    assert [e[2] for e in events(engine, f"enterprise:{cred['enterprise_id']}")][-1] == "enterprise.approve"


def test_squatting_a_shops_public_uscc_does_not_lock_the_shop_out(client, admins):
    """USCCs are public: a squatter registering a real shop's USCC first must not keep the shop out."""
    real = make_enterprise(name=f"真实汽修{uuid.uuid4().hex[:6]}") | {"region_code": "320602"}
    squatter = register(client, **{**real, "name": "抢注者", "licence_no": "乱填"})
    assert token(client, squatter).status_code == 403
    # the shop is on the roster: its own registration takes the pending row over
    import_roster(client, roster_row(real))
    mine = register(client, **real)
    assert mine["status"] == "active" and mine["enterprise_id"] == squatter["enterprise_id"]
    assert token(client, mine).status_code == 200
    assert token(client, squatter).json()["error"]["code"] == "AUTH_INVALID_CREDENTIALS"  # revoked
    # once approved, nobody takes it over
    again = client.post(f"{COLLECTION}/enterprises", json=real)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ENTERPRISE_EXISTS")

    # not on the roster: the regulator refuses the squatter, then the shop registers and waits
    other = make_enterprise() | {"region_code": "320602"}
    squatter = register(client, **other)
    r = regulator(client, admins, "320602")
    assert (
        client.post(
            f"{REG}/enterprises/{other['uscc']}/review",
            json={"approve": False, "reason": "冒用他人统一社会信用代码"},
            headers=r.headers,
        ).status_code
        == 200
    )
    mine = register(client, **other)
    assert mine["status"] == "pending"
    assert token(client, mine).json()["error"]["code"] == "ENTERPRISE_PENDING"
    assert token(client, squatter).json()["error"]["code"] == "AUTH_INVALID_CREDENTIALS"


def test_shop_staff_of_a_suspended_enterprise_are_refused(client):
    shop = Shop(client)
    name = "u" + uuid.uuid4().hex[:10]
    r = client.post(
        f"{COLLECTION}/users", json={"username": name, "password": "shop-pass-1"}, headers=shop.headers
    )
    assert r.status_code == 201, r.text
    login = client.post("/api/v1/shop/token", json={"username": name, "password": "shop-pass-1"})
    staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.get("/api/v1/shop/uploads", headers=staff).status_code == 200
    import_roster(client, roster_row(shop.profile, status="暂停"))
    r = client.get("/api/v1/shop/uploads", headers=staff)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ENTERPRISE_SUSPENDED")
    r = client.post("/api/v1/shop/token", json={"username": name, "password": "shop-pass-1"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ENTERPRISE_SUSPENDED")


def test_a_regulator_cannot_approve_a_shop_whose_licence_the_roster_revoked(client, admins):
    """The roster outranks a hand approval: a pending shop whose licence the roster shows revoked
    (or expired) is not approved by a regulator who overlooked it."""
    profile = {**make_enterprise(), "region_code": "320104"}
    import_roster(client, roster_row(profile, status="吊销"))
    cred = register(client, **profile)
    assert cred["status"] == "pending"
    reg = regulator(client, admins, "320104")
    r = client.post(f"{REG}/enterprises/{cred['uscc']}/review", json={"approve": True}, headers=reg.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "LICENCE_NOT_IN_FORCE"), r.text
    assert token(client, cred).status_code == 403
