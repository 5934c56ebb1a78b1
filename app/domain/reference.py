"""Reference data shipped with the code: GB/T 2260 regions, code tables, plate-prefix → home region.

The same files are loaded into the database by a migration (for joins and statistics); the
in-process copies here let validation run without a database round trip.

regions.csv holds the GB/T 2260 codes of 2013 (from the BSD-licensed GB2260 data set), without the
county-level 市辖区 placeholders; later changes to the standard arrive as new migrations.
plate_prefixes.csv maps every province character, and so far the city letters of 苏 only.
"""

import csv
import json
from functools import cache
from importlib import resources
from typing import Any

_DATA = resources.files("app.domain") / "data"


def _csv_rows(name: str) -> list[dict[str, str]]:
    with (_DATA / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@cache
def regions() -> dict[str, str]:
    """GB/T 2260 code → name."""
    return {r["code"]: r["name"] for r in _csv_rows("regions.csv")}


def region_level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def region_parent(code: str) -> str | None:
    level = region_level(code)
    if level == "province":
        return None
    if level == "city":
        return code[:2] + "0000"
    city = code[:4] + "00"
    return city if city in regions() else code[:2] + "0000"


@cache
def code_tables() -> dict[str, dict[str, str]]:
    """table name → {code: 中文名称}; keys starting with '_' are notes, not codes."""
    raw: dict[str, dict[str, Any]] = json.loads((_DATA / "code_tables.json").read_text(encoding="utf-8"))
    return {t: {k: v for k, v in entries.items() if not k.startswith("_")} for t, entries in raw.items()}


@cache
def plate_prefixes() -> dict[str, str]:
    return {r["prefix"]: r["region_code"] for r in _csv_rows("plate_prefixes.csv")}


def home_region(plate: str | None) -> str | None:
    """The region whose file a car belongs to, from its plate: city when known, else province."""
    if not plate:
        return None
    table = plate_prefixes()
    return table.get(plate[:2]) or table.get(plate[:1])
