"""Portal pages over HTTP (no browser): each audience's forms, Chinese validation messages, login
redirects, same-origin checks. The browser journeys are in test_portal_browser.py."""

import html
import re
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.security.rbac import Role
from app.services.ratings import DIMENSIONS
from tests.app.conftest import Shop, new_staff
from tests.app.test_api_owner import standin_registry
from tests.support.samples import make_id_number, make_record, make_vin

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def browser(client) -> TestClient:
    """A separate cookie jar on the same app, as a second person's browser would be."""
    return TestClient(client.app)


def register_and_login(web: TestClient) -> str:
    phone = "137" + str(uuid.uuid4().int)[:8]
    r = web.post(
        "/owner/register", data={"phone": phone, "password": "pass word 1", "password2": "pass word 1"}
    )
    assert r.status_code == 200 and "注册成功" in r.text
    r = web.post("/owner/login", data={"phone": phone, "password": "pass word 1", "next": "/owner"})
    assert r.status_code == 200 and "我的车辆" in r.text
    return phone


def test_public_pages_show_no_personal_data(client):
    shop = Shop(client, name="页面测试汽修", business_scope="发动机维修、钣金喷漆")
    web = browser(client)
    home = web.get("/")
    assert home.status_code == 200 and "查找维修企业" in home.text and 'name="viewport"' in home.text
    r = web.get("/enterprises", params={"scope": "钣金", "name": "页面测试"})
    assert "页面测试汽修" in r.text
    r = web.get("/enterprises", params={"region": "999999"})
    assert r.status_code == 422 and "所选地区不存在" in r.text
    page = web.get(f"/enterprises/{shop.profile['uscc']}")
    assert page.status_code == 200 and "尚无评价" in page.text
    assert shop.profile["contact_name"] not in page.text and shop.profile["contact_phone"] not in page.text
    missing = web.get("/enterprises/91320000000000000X")
    assert missing.status_code == 404 and "企业不存在" in missing.text and "<html" in missing.text
    assert web.get("/static/portal.css").headers["content-type"].startswith("text/css")


def test_owner_forms_validate_in_chinese_and_bind_a_car(client):
    web = browser(client)
    r = web.post("/owner/register", data={"phone": "123", "password": "short", "password2": "short"})
    assert r.status_code == 422 and "密码至少 8 位" in r.text
    r = web.post(
        "/owner/register", data={"phone": "123", "password": "long enough", "password2": "different!"}
    )
    assert "两次输入的密码不一致" in r.text
    r = web.post(
        "/owner/register", data={"phone": "123", "password": "long enough", "password2": "long enough"}
    )
    assert "手机号格式错误" in r.text
    # pages that need a login send you to it, and back afterwards
    r = web.get("/owner", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/owner/login?next=/owner"
    register_and_login(web)
    r = web.post("/owner/vehicles", data={"vin": "LSVAM4187C2184840", "query_code": ""})
    assert r.status_code == 422 and "校验位正确" in r.text and "请填写结算清单上的查询码" in r.text
    shop, vin = Shop(client), make_vin()
    up = shop.upload(make_record("W-1", vin)).json()
    r = web.post("/owner/vehicles", data={"vin": vin, "query_code": "WRONGCODE2"})
    assert "查询码与车辆不匹配" in r.text
    r = web.post("/owner/vehicles", data={"vin": vin.lower(), "query_code": up["query_code"]})
    assert r.status_code == 200 and "W-1" in r.text and "完成完整档案认证后可评价" in r.text
    assert "授权维修企业查看" not in r.text  # a code alone does not open the file to shops
    assert web.get(f"/owner/vehicles/{vin}/file.pdf").content.startswith(b"%PDF-")
    # the whole history: the registry check from the car's page
    name, id_number = "王五", make_id_number()
    standin_registry(client).register(vin, "苏A12345", name, id_number)
    form = {"plate_no": "苏A12345", "owner_name": name, "id_number": make_id_number()}
    r = web.post(f"/owner/vehicles/{vin}/verification", data=form)
    assert r.status_code == 403 and "核验未通过" in r.text and "行驶证照片" in r.text
    r = web.post(f"/owner/vehicles/{vin}/verification", data={**form, "id_number": id_number})
    assert r.status_code == 200 and "完整档案认证成功" in r.text and "评价本次维修" in r.text
    # rating: every dimension is required, then once only
    rid = up["record_id"]
    r = web.post(f"/owner/records/{rid}/rate", data={"attitude": "5"})
    assert r.status_code == 422 and "请为“维修质量”选择 1 至 5 分" in r.text
    scores = {
        "attitude": "5",
        "quality": "4",
        "efficiency": "4",
        "transparency": "3",
        "environment": "5",
        "comment": "好",
    }
    r = web.post(f"/owner/records/{rid}/rate", data=scores)
    assert "感谢您的评价" in r.text and "已评价" in r.text
    assert "每次维修只能评价一次" in web.post(f"/owner/records/{rid}/rate", data=scores).text
    # grant, with validation, then revoke
    r = web.post(f"/owner/vehicles/{vin}/grants", data={"enterprise_uscc": "x", "days": "99"})
    assert "请填写 18 位统一社会信用代码" in r.text and "授权天数应为 1 至 30 天" in r.text
    r = web.post(f"/owner/vehicles/{vin}/grants", data={"enterprise_uscc": shop.profile["uscc"], "days": "7"})
    assert "已授权" in r.text
    # complaint
    r = web.post(f"/owner/records/{rid}/complain", data={"title": "", "content": ""})
    assert "请填写投诉标题" in r.text and "请填写投诉内容" in r.text
    r = web.post(f"/owner/records/{rid}/complain", data={"title": "收费不透明", "content": "未出示配件单价"})
    assert "待受理" in r.text
    # 行驶证 claim needs a photo
    r = web.post("/owner/claims", data={"vin": vin, "plate_no": "苏A12345"})
    assert "请选择行驶证照片" in r.text
    r = web.post(
        "/owner/claims",
        data={"vin": vin, "plate_no": "苏A12345"},
        files={"photo": ("x.png", PNG, "image/png")},
    )
    assert "请等待监管部门审核" in r.text


def test_cross_site_form_posts_are_refused(client):
    web = browser(client)
    r = web.post(
        "/owner/login",
        data={"phone": "13900000000", "password": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "跨站提交被拒绝" in r.text


def test_regulator_pages_need_a_regulator(client, admins):
    web = browser(client)
    auditor = new_staff(client, admins, Role.AUDIT_ADMIN)
    r = web.post(
        "/staff/login",
        data={"username": auditor.username, "password": auditor.password, "totp_code": "000000"},
    )
    assert r.status_code == 401 and "用户名、密码或动态口令错误" in r.text
    r = web.post("/staff/login", data={"username": "", "password": "", "totp_code": ""})
    assert "请填写用户名、密码、动态口令" in r.text
    r = web.post(
        "/staff/login",
        data={"username": auditor.username, "password": auditor.password, "totp_code": auditor.code()},
    )
    assert r.status_code == 403 and "不是监管人员" in r.text
    reg = new_staff(client, admins, Role.REGULATOR, "320100")
    web2 = browser(client)
    r = web2.post(
        "/staff/login", data={"username": reg.username, "password": reg.password, "totp_code": reg.code()}
    )
    assert r.status_code == 200 and "监管工作台" in r.text and "南京市" in r.text
    r = web2.get("/regulator/statistics", params={"start": "2024-05-01", "end": "2024-04-01"})
    assert r.status_code == 422 and "开始日期须不晚于结束日期" in r.text
    r = web2.get("/regulator/statistics", params={"start": "2024-13-01"})
    assert "日期格式应为" in r.text
    r = web2.get("/regulator/statistics", params={"region": "320200"})
    assert r.status_code == 422 and "超出管辖区域" in r.text
    r = web2.post("/regulator/notices", data={"kind": "", "title": "", "body": ""})
    assert "请选择信息类别" in r.text and "请填写标题" in r.text and "请填写正文" in r.text
    r = web2.post(
        "/regulator/notices",
        data={"kind": "policy", "title": "维修新规", "body": "正文"},
        files=[("files", ("附件.pdf", b"%PDF-1.4 x", "application/pdf"))],
    )
    assert r.status_code == 200 and "维修新规" in r.text and "附件.pdf" in r.text
    assert "维修新规" in web.get("/notices?kind=policy").text
    web2.post("/staff/logout")
    assert web2.get("/regulator", follow_redirects=False).status_code == 303


def test_shop_pages(client):
    shop = Shop(client, name="门户测试汽修")
    bad = make_record("BAD-1", make_vin())
    bad["settle_date"] = "2999-01-01"
    shop.batch([bad])
    shop.upload(make_record("OK-1", make_vin()))
    client.post(
        "/api/v1/collection/users",
        json={"username": "shop-page-user", "password": "shop pass 1"},
        headers=shop.headers,
    )
    web = browser(client)
    r = web.post("/shop/login", data={"username": "shop-page-user", "password": "nope nope"})
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = web.post("/shop/login", data={"username": "shop-page-user", "password": "shop pass 1"})
    assert r.status_code == 200 and "门户测试汽修" in r.text and "OK-1" in r.text
    assert "BAD-1" in r.text and "日期不能晚于今天" in r.text


def test_shop_corrects_a_record_from_the_portal(client, engine):
    """A correction from the portal: the form is pre-filled with the record, checked by the upload
    validators (Chinese messages beside the fields), stored as a new version like an API re-upload,
    visible in the owner's history, and audited; a rejected upload is corrected from an empty form."""
    from tests.app.test_portal_api import OWNER, bound_owner

    shop = Shop(client, name="更正测试汽修")
    vin = make_vin()
    h, record_id = bound_owner(client, shop, vin, no="COR-1")
    bad = make_record("COR-2", make_vin())
    bad["settle_date"] = "2999-01-01"
    shop.batch([bad])
    client.post(
        "/api/v1/collection/users",
        json={"username": "shop-correct-user", "password": "shop pass 1"},
        headers=shop.headers,
    )
    web = browser(client)
    assert (
        web.post("/shop/login", data={"username": "shop-correct-user", "password": "shop pass 1"}).status_code
        == 200
    )
    assert f'href="/shop/records/{record_id}/correct"' in web.get(f"/shop/records/{record_id}").text
    page = web.get(f"/shop/records/{record_id}/correct")
    assert page.status_code == 200
    original = client.get(f"/api/v1/collection/records/{record_id}", headers=shop.headers).json()["latest"]
    form = dict(re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"', page.text))
    assert form["settlement_no"] == "COR-1" and form["vehicle.vin"] == vin
    assert form["fault_description"] == original["fault_description"]
    assert form["items.0.name"] == original["items"][0]["name"]
    assert form["totals.total"] == str(original["total"])
    selected = dict(
        re.findall(
            r'<select id="f-[^"]+" name="([^"]+)">.*?<option value="([^"]*)" selected', page.text, re.S
        )
    )
    assert selected.get("repair_type", "") == (original["repair_type"] or "")
    form.update({k: v for k, v in selected.items()})

    # a wrong total: refused with the validators' Chinese message, nothing stored
    wrong = {**form, "record_id": str(record_id), "totals.total": "1.00"}
    r = web.post("/shop/correct", data=wrong)
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    assert re.search(r'class="error" id="e-totals\.total">[^<]*[\u4e00-\u9fff]', r.text), r.text[-2000:]
    assert (
        client.get(f"/api/v1/collection/records/{record_id}", headers=shop.headers).json()["current_version"]
        == 1
    )

    fixed = {
        **form,
        "record_id": str(record_id),
        "fault_description": "更正：更换刹车片",
        "mileage_km": "23456",
    }
    r = web.post("/shop/correct", data=fixed, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/shop/records/{record_id}"
    shown = web.get(r.headers["location"]).text
    assert "门户更正" in shown and "更正：更换刹车片" in shown
    stored = client.get(f"/api/v1/collection/records/{record_id}", headers=shop.headers).json()
    assert stored["current_version"] == 2 and stored["versions"][-1]["source"] == "portal"
    assert stored["latest"]["mileage_km"] == 23456 and stored["latest"]["items"] == original["items"]
    # the same as an API re-upload: the same content again is no new version
    assert web.post("/shop/correct", data=fixed, follow_redirects=False).status_code == 303
    assert (
        client.get(f"/api/v1/collection/records/{record_id}", headers=shop.headers).json()["current_version"]
        == 2
    )
    history = client.get(f"{OWNER}/vehicles/{vin}/history", headers=h).json()["records"]
    assert [(x["settlement_no"], x["fault_description"]) for x in history] == [("COR-1", "更正：更换刹车片")]

    # the rejected upload: its link opens an empty form with its number, a complete form uploads it
    assert "/shop/correct?settlement_no=COR-2" in web.get("/shop").text
    blank = web.get("/shop/correct", params={"settlement_no": "COR-2"})
    assert blank.status_code == 200 and 'value="COR-2"' in blank.text
    new = {**{k: v for k, v in form.items() if k not in ("record_id",)}, "settlement_no": "COR-2"}
    new["vehicle.vin"] = make_vin()
    r = web.post("/shop/correct", data=new, follow_redirects=False)
    assert r.status_code == 303
    # a record with that number exists now: the rejection's link leads to its correction form
    again = web.get("/shop/correct", params={"settlement_no": "COR-2"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].endswith("/correct")

    with engine.connect() as conn:
        audited = conn.execute(
            sa.text(
                "SELECT outcome, detail->>'settlement_no' FROM audit.event"
                " WHERE action = 'record.correct' ORDER BY seq"
            )
        ).all()
    assert [tuple(a) for a in audited][-4:] == [
        ("failure", "COR-1"),
        ("success", "COR-1"),
        ("success", "COR-1"),
        ("success", "COR-2"),
    ]


def distribution_bars(page: str, title: str) -> dict[str, dict[int, int]]:
    """The stacked bars of the rating-distribution chart titled `title`: {row label: {score: count}}."""
    svg = re.search(rf'<svg class="chart distribution"[^>]*aria-label="{title}".*?</svg>', page, re.S)
    assert svg, f"no distribution chart {title!r}"
    return {
        html.unescape(label): {
            int(s): int(n) for s, n in re.findall(r'data-score="(\d)" data-count="(\d+)"', row)
        }
        for label, row in re.findall(
            r'<g class="dist-row" data-label="([^"]*)">(.*?)</g>', svg.group(0), re.S
        )
    }


def test_enterprise_page_charts_the_rating_distribution(client, engine):
    shop = Shop(client, name="分布测试汽修")
    scores = [(5, 4, 3, 2, 1), (5, 5, 3, 1, 1), (4, 4, 4, 2, 5)]
    with engine.begin() as conn:
        for i, s in enumerate(scores):
            rid = shop.upload(make_record(f"D-{i}", make_vin())).json()["record_id"]
            conn.execute(
                sa.text(
                    "INSERT INTO rating (record_id, enterprise_id, owner_id, attitude, quality, efficiency,"
                    " transparency, environment) VALUES (:r, :e, 1, :a, :q, :ef, :t, :en)"
                ),
                {"r": rid, "e": shop.enterprise_id, "a": s[0], "q": s[1], "ef": s[2], "t": s[3], "en": s[4]},
            )
    want = {
        title: {score: sum(1 for s in scores if s[i] == score) for score in range(1, 6)}
        for i, title in enumerate(DIMENSIONS.values())
    }
    page = browser(client).get(f"/enterprises/{shop.profile['uscc']}").text
    assert distribution_bars(page, "各项评分分布") == want
    api = client.get(f"/api/v1/public/enterprises/{shop.profile['uscc']}").json()["ratings"]["distribution"]
    assert {DIMENSIONS[d]: {int(s): n for s, n in c.items()} for d, c in api.items()} == want
