"""Each audience's main journey in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium, against the app served by uvicorn on loopback.

Screenshots of each journey's final page go to build/screenshots/, at 375 px (a phone) and 1280 px.
"""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import JavascriptException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import presence_of_element_located
from selenium.webdriver.support.ui import Select, WebDriverWait

from app.main import create_app
from tests.app.conftest import Shop, regulator
from tests.app.servers import serve
from tests.app.test_api_owner import new_owner, verify_full
from tests.support.samples import make_record, make_vin

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WIDTHS = {"phone": 375, "desktop": 1280}


@pytest.fixture(scope="module")
def server(settings) -> Iterator[str]:
    """The portal on a loopback port, served by uvicorn in this process (its own runtime and pool)."""
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    driver.set_window_size(WIDTHS["desktop"], 900)
    yield driver
    driver.quit()


def fill(driver, form_id: str, expect: tuple[str, str] | None = None, **fields: str) -> None:
    form = driver.find_element(By.ID, form_id)
    for name, value in fields.items():
        box = form.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    submit(driver, form, expect)


def _gone(exc: WebDriverException) -> bool:
    """The element's document was left or replaced: Selenium says "stale", while Chromium may say "Node
    with given id does not belong to the document" (an inspector error) for the same thing."""
    stale = isinstance(exc, StaleElementReferenceException)
    return stale or "does not belong to the document" in (exc.msg or "")


def navigate(driver, action: Callable[[], object], expect: tuple[str, str] | None = None) -> None:
    """Do what leaves the page (click a button or link), then wait for the page that follows: a new
    document, fully loaded, and, where the caller names one, an element of it. The old page is marked
    with a token its successor cannot have, so nothing here depends on when the old nodes go stale."""
    token = uuid.uuid4().hex
    driver.execute_script("window.__pboxPage = arguments[0]", token)
    action()

    def arrived(d) -> bool:
        try:
            return bool(
                d.execute_script(
                    "return window.__pboxPage !== arguments[0] && document.readyState === 'complete'", token
                )
            )
        except WebDriverException as exc:
            if _gone(exc) or isinstance(exc, JavascriptException):
                return False  # mid-navigation
            raise

    WebDriverWait(driver, 15).until(arrived)
    if expect is not None:
        WebDriverWait(driver, 15).until(presence_of_element_located(expect))


def submit(driver, form, expect: tuple[str, str] | None = None) -> None:
    """Submit a form and wait for the page the server answers with (see navigate)."""
    navigate(driver, form.find_element(By.CSS_SELECTOR, "button").click, expect)


def follow(driver, link_text: str, expect: tuple[str, str] | None = None) -> None:
    navigate(driver, driver.find_element(By.LINK_TEXT, link_text).click, expect)


def screenshots(driver, name: str) -> None:
    """The whole page at each width; the page must not scroll sideways on a phone."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        driver.set_window_size(width, 900)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} scrolls sideways at {width}px by {overflow}px"
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(height + 120, 6000))
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(SHOTS / f"{name}-{label}.png"))
    driver.set_window_size(WIDTHS["desktop"], 900)


def sign_out(driver) -> None:
    driver.delete_all_cookies()


def test_owner_binds_a_car_and_sees_a_repair_uploaded_a_moment_earlier(client, server, browser):
    shop = Shop(client, name="浏览器测试汽车服务有限公司")
    vin = make_vin()
    up = shop.upload(make_record("BR-0001", vin, fault="左前轮异响", plate="苏A8B888")).json()
    phone = "136" + str(uuid.uuid4().int)[:8]
    sign_out(browser)
    browser.get(server + "/owner/register")
    fill(
        browser,
        "register",
        phone=phone,
        display_name="张先生",
        password="browser pw 1",
        password2="browser pw 1",
    )
    assert "注册成功" in browser.page_source
    fill(browser, "login", password="browser pw 1")
    assert browser.find_element(By.TAG_NAME, "h1").text == "我的车辆"
    fill(browser, "bind", vin=vin, query_code="WRONG-CODE")
    assert "查询码与车辆不匹配" in browser.find_element(By.CLASS_NAME, "errors").text
    fill(browser, "bind", vin=vin, query_code=up["query_code"])
    history = browser.find_element(By.ID, "history").text
    assert "BR-0001" in history and "左前轮异响" in history and "浏览器测试汽车服务有限公司" in history
    assert browser.find_element(By.ID, "vin").text == vin
    screenshots(browser, "owner-vehicle")


def test_regulator_handles_a_complaint(client, admins, server, browser):
    shop = Shop(client, region_code="320106", name="鼓楼投诉测试汽修")
    vin = make_vin()
    up = shop.upload(make_record("CP-0001", vin)).json()
    _, h = new_owner(client)
    client.post("/api/v1/owner/vehicles", json={"vin": vin, "query_code": up["query_code"]}, headers=h)
    r = client.post(
        "/api/v1/owner/complaints",
        json={"record_id": up["record_id"], "title": "维修后仍有异响", "content": "更换刹车片后异响未消除。"},
        headers=h,
    )
    cid = r.json()["complaint_id"]
    reg = regulator(client, admins, "320106")  # logged in over the API with this step's code
    sign_out(browser)
    browser.get(server + "/regulator")
    assert "/staff/login" in browser.current_url
    fill(browser, "login", username=reg.username, password=reg.password, totp_code=reg.code(1))
    follow(browser, "维修后仍有异响", expect=(By.ID, "accept"))
    submit(browser, browser.find_element(By.ID, "accept"), expect=(By.ID, "assign"))
    assert "已受理" in browser.find_element(By.ID, "status").text
    Select(browser.find_element(By.ID, "assignee_id")).select_by_value(str(reg.staff_id))
    submit(browser, browser.find_element(By.ID, "assign"), expect=(By.ID, "respond"))
    assert "办理中" in browser.find_element(By.ID, "status").text
    fill(browser, "respond", text="已约谈企业，免费返修。")
    fill(browser, "close", text="车主确认已解决")
    assert "已办结" in browser.find_element(By.ID, "status").text
    assert "已约谈企业，免费返修。" in browser.find_element(By.ID, "response").text
    assert client.get(f"/api/v1/owner/complaints/{cid}", headers=h).json()["status"] == "closed"
    screenshots(browser, "regulator-complaint")
    browser.get(server + "/regulator/statistics")
    assert browser.find_element(By.CSS_SELECTOR, "#section-by_region svg") is not None
    screenshots(browser, "regulator-statistics")


def test_visitor_finds_a_shop_and_its_ratings(client, server, browser):
    name = "访客查找测试汽修" + uuid.uuid4().hex[:4]
    shop = Shop(client, name=name, business_scope="发动机维修、变速箱维修、钣金喷漆")
    vin = make_vin()
    up = shop.upload(make_record("VR-0001", vin)).json()
    _, h = new_owner(client)
    client.post("/api/v1/owner/vehicles", json={"vin": vin, "query_code": up["query_code"]}, headers=h)
    verify_full(client, h, vin)  # a rating needs the whole-history proof, not a code alone
    scores = {"attitude": 5, "quality": 4, "efficiency": 5, "transparency": 4, "environment": 3}
    client.post(
        f"/api/v1/owner/records/{up['record_id']}/rating", json=scores | {"comment": "师傅很专业"}, headers=h
    )
    sign_out(browser)
    browser.get(server + "/enterprises")
    Select(browser.find_element(By.ID, "region")).select_by_value("320100")
    fill(browser, "search", name=name[:8], scope="变速箱")
    follow(browser, name, expect=(By.ID, "overall"))
    assert browser.find_element(By.TAG_NAME, "h1").text == name
    assert browser.find_element(By.ID, "overall").text == "4.2"
    assert browser.find_element(By.ID, "rating-count").text == "1"
    assert "师傅很专业" in browser.page_source and "王师傅" not in browser.page_source
    assert "排名第" in browser.find_element(By.ID, "standing").text
    screenshots(browser, "visitor-enterprise")


def test_shop_staff_see_their_uploads_and_answer_a_rating(client, server, browser):
    shop = Shop(client, name="企业门户浏览器测试汽修")
    vin = make_vin()
    up = shop.upload(make_record("SP-0001", vin)).json()
    shop.upload(make_record("SP-0001", vin, fault="更正：右前轮异响"))
    bad = make_record("SP-0002", vin)
    bad["vehicle"]["vin"] = "LSVAM4187C2184840"  # wrong check digit
    shop.batch([bad])
    _, h = new_owner(client)
    client.post("/api/v1/owner/vehicles", json={"vin": vin, "query_code": up["query_code"]}, headers=h)
    verify_full(client, h, vin)  # a rating needs the whole-history proof, not a code alone
    scores = {"attitude": 4, "quality": 5, "efficiency": 4, "transparency": 5, "environment": 4}
    client.post(
        f"/api/v1/owner/records/{up['record_id']}/rating", json=scores | {"comment": "准时交车"}, headers=h
    )
    user = "staff-" + uuid.uuid4().hex[:6]
    client.post(
        "/api/v1/collection/users", json={"username": user, "password": "shop pass 1"}, headers=shop.headers
    )
    sign_out(browser)
    browser.get(server + "/shop/login")
    fill(browser, "login", username=user, password="shop pass 1")
    uploads = browser.find_element(By.ID, "uploads").text
    assert "SP-0001" in uploads and "已更正" in uploads
    assert "SP-0002" in browser.find_element(By.ID, "rejections").text
    assert "校验位错误" in browser.find_element(By.ID, "rejections").text
    reply = browser.find_element(By.CSS_SELECTOR, "form[action^='/shop/ratings/']")
    reply.find_element(By.NAME, "text").send_keys("感谢您的认可")
    submit(browser, reply)
    assert "本店答复：感谢您的认可" in browser.page_source
    screenshots(browser, "shop-home")
    # a correction from the portal: the record's form, pre-filled, one field changed
    browser.get(server + f"/shop/records/{up['record_id']}")
    navigate(browser, browser.find_element(By.ID, "correct-link").click, expect=(By.ID, "correct"))
    form = browser.find_element(By.ID, "correct")
    assert form.find_element(By.NAME, "settlement_no").get_attribute("value") == "SP-0001"
    screenshots(browser, "shop-correct")
    fill(browser, "correct", fault_description="更正：更换右前轮轴承")
    versions = browser.find_element(By.ID, "versions").text
    assert "门户更正" in versions and "更正：更换右前轮轴承" in versions
