"""Portal pages over HTTP (no browser): each audience's forms, Chinese validation messages, login
redirects, same-origin checks. The browser journeys are in test_portal_browser.py."""

import uuid

from fastapi.testclient import TestClient

from app.devtools.samples import make_record, make_vin
from app.security.rbac import Role
from tests.app.conftest import Shop, new_staff

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
    assert r.status_code == 200 and "W-1" in r.text and "评价本次维修" in r.text
    assert web.get(f"/owner/vehicles/{vin}/file.pdf").content.startswith(b"%PDF-")
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
