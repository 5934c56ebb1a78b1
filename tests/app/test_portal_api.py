"""The portal's JSON API: directory, ratings, complaints, notices, 行驶证 claims, shop portal, PDF."""

import io
import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from tests.app.conftest import Shop, audit_actions, regulator
from tests.app.test_api_owner import new_owner, verify_full
from tests.support.samples import make_record, make_vin

OWNER = "/api/v1/owner"
REG = "/api/v1/regulator"
PUB = "/api/v1/public"
SHOP = "/api/v1/shop"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n% test\n"
SCORES = {"attitude": 5, "quality": 4, "efficiency": 3, "transparency": 4, "environment": 5}


def bound_owner(client, shop: Shop, vin: str, settle: date | None = None, no: str | None = None):
    """An owner who bound `vin` with the code of a repair `shop` just uploaded and proved the whole
    history by the registry check (as ratings and grants need): (headers, record id)."""
    up = shop.upload(make_record(no or "R-" + uuid.uuid4().hex[:8], vin, settle=settle)).json()
    _, h = new_owner(client)
    r = client.post(f"{OWNER}/vehicles", json={"vin": vin, "query_code": up["query_code"]}, headers=h)
    assert r.status_code == 201, r.text
    verify_full(client, h, vin)
    return h, up["record_id"]


def claim_by_photo(client, h, vin: str, plate: str, photo: tuple = ("xsz.png", PNG, "image/png")):
    """The owner's request for the whole history by a 行驶证 photo."""
    return client.post(
        f"{OWNER}/claims", data={"vin": vin, "plate_no": plate}, files={"photo": photo}, headers=h
    )


def code_of(r):
    return (r.status_code, r.json()["error"]["code"])


def test_rating_rules_and_public_profile(client, engine):
    region, category = "320115", "2"  # a county of its own, so the standing is this test's alone
    shops = [Shop(client, region_code=region, category=category, name=f"江宁测试汽修{i}") for i in range(3)]
    vins = [make_vin() for _ in shops]
    owners = [bound_owner(client, s, v) for s, v in zip(shops, vins, strict=True)]
    overall = [3, 5, 4]
    for (h, rid), o in zip(owners, overall, strict=True):
        body = {k: o for k in SCORES} | {"comment": f"总体{o}分"}
        assert client.post(f"{OWNER}/records/{rid}/rating", json=body, headers=h).status_code == 201
    h, rid = owners[0]
    assert code_of(client.post(f"{OWNER}/records/{rid}/rating", json=SCORES, headers=h)) == (
        409,
        "RATING_EXISTS",
    )
    r = client.post(f"{OWNER}/records/{rid}/rating", json=SCORES | {"quality": 6}, headers=h)
    assert code_of(r) == (422, "VALIDATION_FAILED")
    # someone else's repair is not rateable, nor one settled before the window
    other_h, _ = owners[1]
    assert code_of(client.post(f"{OWNER}/records/{rid}/rating", json=SCORES, headers=other_h))[0] == 404
    old = shops[0].upload(make_record("OLD-1", vins[0], settle=date.today() - timedelta(days=200))).json()
    r = client.post(f"{OWNER}/records/{old['record_id']}/rating", json=SCORES, headers=h)
    assert code_of(r) == (409, "RATING_WINDOW_CLOSED")

    prof = client.get(f"{PUB}/enterprises/{shops[1].profile['uscc']}").json()
    assert prof["ratings"]["count"] == 1 and prof["ratings"]["averages"]["quality"] == 5
    assert prof["standing"] == {
        "rank": 1,
        "rated_peers": 3,
        "peers": 3,
        "region_name": "江苏省 南京市 江宁区",
        "category_name": "二类汽车整车维修企业",
    }
    assert client.get(f"{PUB}/enterprises/{shops[0].profile['uscc']}").json()["standing"]["rank"] == 3
    assert "contact_phone" not in prof and "王师傅" not in str(prof)

    found = client.get(f"{PUB}/enterprises", params={"name": "江宁测试汽修", "region": "320100"}).json()
    assert [e["name"] for e in found["items"]] == ["江宁测试汽修1", "江宁测试汽修2", "江宁测试汽修0"]
    assert found["total"] == 3
    none = client.get(f"{PUB}/enterprises", params={"name": "江宁测试汽修", "region": "320102"}).json()
    assert none["total"] == 0
    assert (
        client.get(f"{PUB}/enterprises", params={"name": "江宁测试汽修", "category": "1"}).json()["total"]
        == 0
    )


def test_complaint_workflow_with_deadlines(client, admins, engine):
    shop = Shop(client, region_code="320104")
    vin = make_vin()
    h, rid = bound_owner(client, shop, vin)
    r = client.post(
        f"{OWNER}/complaints",
        json={"record_id": rid, "title": "多收费", "content": "结算多收 200 元"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["complaint_id"]
    boss, clerk = regulator(client, admins, "320100"), regulator(client, admins, "320104")
    outsider = regulator(client, admins, "320200")
    assert code_of(client.post(f"{REG}/complaints/{cid}/accept", headers=outsider.headers)) == (
        403,
        "REGION_FORBIDDEN",
    )
    listed = client.get(f"{REG}/complaints", headers=boss.headers).json()
    assert cid in [c["id"] for c in listed]
    assert cid not in [c["id"] for c in client.get(f"{REG}/complaints", headers=outsider.headers).json()]
    assert code_of(client.post(f"{REG}/complaints/{cid}/close", json={}, headers=boss.headers)) == (
        409,
        "COMPLAINT_STATE",
    )
    assert client.post(f"{REG}/complaints/{cid}/accept", headers=boss.headers).status_code == 204
    r = client.post(
        f"{REG}/complaints/{cid}/assign", json={"assignee_id": outsider.staff_id}, headers=boss.headers
    )
    assert code_of(r) == (422, "ASSIGNEE_INVALID")
    r = client.post(
        f"{REG}/complaints/{cid}/assign", json={"assignee_id": clerk.staff_id}, headers=boss.headers
    )
    assert r.status_code == 204
    # overdue: the deadline passes while it is still unanswered
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE complaint SET deadline_at = now() - interval '1 day' WHERE id = :i"), {"i": cid}
        )
    overdue = client.get(f"{REG}/complaints", params={"overdue": "true"}, headers=boss.headers).json()
    assert [c["id"] for c in overdue if c["id"] == cid] == [cid] and overdue[0]["overdue"] is True
    r = client.post(f"{REG}/complaints/{cid}/respond", json={"text": "已责令退费"}, headers=boss.headers)
    assert code_of(r) == (403, "NOT_ASSIGNEE")
    r = client.post(f"{REG}/complaints/{cid}/respond", json={"text": "已责令退费"}, headers=clerk.headers)
    assert r.status_code == 204
    assert (
        client.post(
            f"{REG}/complaints/{cid}/close", json={"note": "车主满意"}, headers=boss.headers
        ).status_code
        == 204
    )
    mine = client.get(f"{OWNER}/complaints/{cid}", headers=h).json()
    assert (mine["status"], mine["status_name"], mine["response"], mine["overdue"]) == (
        "closed",
        "已办结",
        "已责令退费",
        False,
    )
    steps = ["complaint.accept", "complaint.assign", "complaint.respond", "complaint.close"]
    assert audit_actions(engine, f"complaint:{cid}") == steps


def test_notices_are_published_with_attachments_and_public(client, admins):
    reg = regulator(client, admins, "320000")
    r = client.post(
        f"{REG}/notices",
        data={"kind": "standard", "title": "机动车维修服务规范", "body": "自下月起施行。"},
        files=[("files", ("规范.pdf", PDF, "application/pdf")), ("files", ("图.png", PNG, "image/png"))],
        headers=reg.headers,
    )
    assert r.status_code == 201, r.text
    nid = r.json()["notice_id"]
    r = client.post(
        f"{REG}/notices",
        data={"kind": "standard", "title": "x", "body": "y"},
        files=[("files", ("a.exe", b"MZ\x90\x00", "application/octet-stream"))],
        headers=reg.headers,
    )
    assert code_of(r) == (415, "ATTACHMENT_TYPE")
    listing = client.get(f"{PUB}/notices", params={"kind": "standard"}).json()
    assert listing["items"][0]["id"] == nid and listing["items"][0]["kind_name"] == "标准规范"
    d = client.get(f"{PUB}/notices/{nid}").json()
    assert [a["filename"] for a in d["attachments"]] == ["规范.pdf", "图.png"]
    got = client.get(f"{PUB}/notices/{nid}/attachments/{d['attachments'][0]['id']}")
    assert got.content == PDF and got.headers["content-type"] == "application/pdf"
    _, h = new_owner(client)
    assert (
        client.post(
            f"{REG}/notices", data={"kind": "notice", "title": "t", "body": "b"}, headers=h
        ).status_code
        == 401
    )


def test_vehicle_claim_by_licence_photo(client, admins, engine):
    shop = Shop(client)
    vin = make_vin()
    shop.upload(make_record("C-1", vin, plate="苏A77777"))
    _, h = new_owner(client)
    r = claim_by_photo(client, h, vin, "苏A77777")
    assert r.status_code == 201, r.text
    claim = r.json()["claim_id"]
    r = claim_by_photo(client, h, vin, "苏A77777", ("x.pdf", PDF, "application/pdf"))
    assert code_of(r) == (415, "ATTACHMENT_TYPE")
    far = regulator(client, admins, "320200")  # 苏A is Nanjing: Wuxi's regulators do not see it
    assert claim not in [c["id"] for c in client.get(f"{REG}/claims", headers=far.headers).json()]
    assert code_of(client.get(f"{REG}/claims/{claim}/photo", headers=far.headers)) == (
        403,
        "REGION_FORBIDDEN",
    )
    reg = regulator(client, admins, "320100")
    assert claim in [c["id"] for c in client.get(f"{REG}/claims", headers=reg.headers).json()]
    assert client.get(f"{REG}/claims/{claim}/photo", headers=reg.headers).content == PNG
    assert code_of(client.get(f"{OWNER}/vehicles/{vin}/history", headers=h)) == (403, "VEHICLE_NOT_BOUND")
    r = client.post(f"{REG}/claims/{claim}/review", json={"approve": True}, headers=reg.headers)
    assert r.status_code == 204
    assert (
        code_of(client.post(f"{REG}/claims/{claim}/review", json={"approve": True}, headers=reg.headers))[1]
        == "CLAIM_STATE"
    )
    assert [
        x["settlement_no"] for x in client.get(f"{OWNER}/vehicles/{vin}/history", headers=h).json()["records"]
    ] == ["C-1"]
    assert client.get(f"{OWNER}/claims", headers=h).json()[0]["status"] == "approved"
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM audit.event WHERE subject = :s AND action = 'claim.photo_read'"),
            {"s": f"claim:{claim}"},
        ).scalar()
    assert n == 1


def shop_user(client, shop: Shop):
    name = "s-" + uuid.uuid4().hex[:8]
    r = client.post(
        "/api/v1/collection/users", json={"username": name, "password": "shop pass 1"}, headers=shop.headers
    )
    assert r.status_code == 201, r.text
    tok = client.post(f"{SHOP}/token", json={"username": name, "password": "shop pass 1"})
    assert tok.status_code == 200, tok.text
    return {"Authorization": f"Bearer {tok.json()['access_token']}"}


def test_shop_portal_uploads_answers_and_shared_histories(client):
    mine, other = Shop(client, name="本店汽修"), Shop(client, name="别家汽修")
    vin = make_vin()
    other.upload(make_record("O-1", vin, settle=date.today() - timedelta(days=30)))
    h, rid = bound_owner(client, mine, vin, no="M-1")
    mine.upload(make_record("M-1", vin, fault="更正：异响"))  # a correction: version 2
    bad = make_record("M-BAD", vin)
    bad["totals"]["total"] = "1.00"
    assert mine.batch([bad]).json()["results"][0]["status"] == "rejected"
    sh = shop_user(client, mine)
    ups = client.get(f"{SHOP}/uploads", headers=sh).json()
    assert [(u["settlement_no"], u["current_version"]) for u in ups] == [("M-1", 2)]
    rej = client.get(f"{SHOP}/rejections", headers=sh).json()
    assert rej[0]["settlement_no"] == "M-BAD" and rej[0]["errors"][0]["code"] == "AMOUNT_MISMATCH"
    versions = client.get(f"{SHOP}/records/{rid}", headers=sh).json()["versions"]
    assert [v["fault_description"] for v in versions] == ["发动机异响", "更正：异响"]
    # ratings and complaints, answered once
    client.post(f"{OWNER}/records/{rid}/rating", json=SCORES | {"comment": "不错"}, headers=h)
    cid = client.post(
        f"{OWNER}/complaints", json={"record_id": rid, "title": "慢", "content": "等了三天"}, headers=h
    ).json()["complaint_id"]
    rating = client.get(f"{SHOP}/ratings", headers=sh).json()[0]
    assert rating["comment"] == "不错"
    assert (
        client.post(
            f"{SHOP}/ratings/{rating['rating_id']}/reply", json={"text": "谢谢"}, headers=sh
        ).status_code
        == 204
    )
    assert code_of(
        client.post(f"{SHOP}/ratings/{rating['rating_id']}/reply", json={"text": "再谢"}, headers=sh)
    ) == (409, "REPLY_EXISTS")
    assert (
        client.post(f"{SHOP}/complaints/{cid}/reply", json={"text": "配件缺货"}, headers=sh).status_code
        == 204
    )
    assert client.get(f"{OWNER}/complaints/{cid}", headers=h).json()["enterprise_reply"] == "配件缺货"
    other_sh = shop_user(client, other)
    assert (
        code_of(client.post(f"{SHOP}/complaints/{cid}/reply", json={"text": "x"}, headers=other_sh))[0] == 404
    )
    # shared history: only under the owner's grant, the other shop's identity hidden
    assert code_of(client.get(f"{SHOP}/shared/{vin}/history", headers=other_sh)) == (
        403,
        "AUTHORIZATION_REQUIRED",
    )
    g = client.post(
        f"{OWNER}/vehicles/{vin}/grants",
        json={"enterprise_uscc": other.profile["uscc"], "days": 3},
        headers=h,
    )
    assert g.status_code == 201
    assert [s["vin"] for s in client.get(f"{SHOP}/shared", headers=other_sh).json()] == [vin]
    recs = client.get(f"{SHOP}/shared/{vin}/history", headers=other_sh).json()["records"]
    assert [(x["settlement_no"], x["enterprise_name"]) for x in recs] == [("M-1", None), ("O-1", "别家汽修")]
    grants = client.get(f"{OWNER}/grants", headers=h).json()
    assert grants[0]["active"] and grants[0]["enterprise_name"] == "别家汽修"
    client.delete(f"{OWNER}/grants/{grants[0]['grant_id']}", headers=h)
    assert client.get(f"{SHOP}/shared", headers=other_sh).json() == []
    assert client.get(f"{OWNER}/grants", headers=h).json()[0]["active"] is False


def test_vehicle_file_pdf(client):
    shop = Shop(client)
    vin = make_vin()
    h, _ = bound_owner(client, shop, vin)
    r = client.get(f"{OWNER}/vehicles/{vin}/file.pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-") and b"WenQuanYi" in r.content  # the CJK font is embedded
    _, stranger = new_owner(client)
    assert code_of(client.get(f"{OWNER}/vehicles/{vin}/file.pdf", headers=stranger)) == (
        403,
        "VEHICLE_NOT_BOUND",
    )
    assert io.BytesIO(r.content).getbuffer().nbytes > 5000


def test_shop_corrections_api_round_trips_a_record(client, engine):
    """The correction's JSON side: the latest content as an upload body, sent back changed, is a new
    version like an API re-upload; a wrong body gets the upload's field errors; each attempt audited;
    another shop's record is not found."""
    shop, other = Shop(client, name="更正接口汽修"), Shop(client, name="别家更正汽修")
    vin = make_vin()
    up = shop.upload(make_record("CA-1", vin)).json()
    sh = shop_user(client, shop)
    body = client.get(f"{SHOP}/records/{up['record_id']}/correction", headers=sh).json()
    assert body["settlement_no"] == "CA-1" and body["vehicle"]["vin"] == vin
    assert client.post(f"{SHOP}/corrections", json=body, headers=sh).json()["outcome"] == "unchanged"
    body["mileage_km"] = 54321
    r = client.post(f"{SHOP}/corrections", json=body, headers=sh)
    assert r.status_code == 200
    assert r.json() == {"record_id": up["record_id"], "outcome": "updated", "version": 2}
    versions = client.get(f"{SHOP}/records/{up['record_id']}", headers=sh).json()["versions"]
    assert [(v["version"], v["source"], v["mileage_km"]) for v in versions][-1] == (2, "portal", 54321)
    r = client.post(f"{SHOP}/corrections", json={**body, "settle_date": "2999-01-01"}, headers=sh)
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_FAILED"
    assert "settle_date" in [f["field"] for f in r.json()["error"]["fields"]]
    assert "settle_date" in str(client.get(f"{SHOP}/rejections", headers=sh).json()[0]["errors"])
    stranger = shop_user(client, other)
    r = client.get(f"{SHOP}/records/{up['record_id']}/correction", headers=stranger)
    assert code_of(r) == (404, "RECORD_NOT_FOUND")
    with engine.connect() as conn:
        outcomes = conn.execute(
            sa.text(
                "SELECT outcome, detail->>'outcome' FROM audit.event WHERE action = 'record.correct'"
                " AND detail->>'settlement_no' = 'CA-1' ORDER BY seq"
            )
        ).all()
    assert [tuple(o) for o in outcomes] == [
        ("success", "unchanged"),
        ("success", "updated"),
        ("failure", None),
    ]
