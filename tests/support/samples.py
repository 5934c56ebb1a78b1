"""Builders of valid repair records (and enterprises, and their licence roster rows) for tests and
benchmarks."""

import csv
import io
import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app.domain.idcard import check_char as id_check
from app.domain.uscc import _ALPHABET as USCC_ALPHABET
from app.domain.uscc import check_char as uscc_check
from app.domain.vin import check_char

_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def make_vin(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    body = "LSV" + "".join(rng.choice(_VIN_CHARS) for _ in range(14))
    return body[:8] + check_char(body) + body[9:]


def make_record(
    settlement_no: str = "JS-0001",
    vin: str = "LSVAM4187C2184847",
    *,
    items: int = 2,
    parts: int = 2,
    settle: date | None = None,
    mileage: int = 42000,
    fault: str = "发动机异响",
    plate: str | None = "苏A12345",
) -> dict[str, Any]:
    settle = settle or date.today() - timedelta(days=1)
    item_rows = [{"name": f"项目{i}", "hours": "1.50", "fee": f"{100 + i}.00"} for i in range(items)]
    part_rows = [
        {
            "name": f"配件{i}",
            "code": f"P{i:04d}",
            "brand": "博世",
            "quantity": "2",
            "unit_price": f"{30 + i}.25",
            "kind": "1",
        }
        for i in range(parts)
    ]
    labour = sum(Decimal(r["fee"]) for r in item_rows)
    part_total = sum(Decimal(r["quantity"]) * Decimal(r["unit_price"]) for r in part_rows)
    return {
        "settlement_no": settlement_no,
        "vehicle": {
            "vin": vin,
            "plate_no": plate,
            "plate_colour": "1",
            "brand": "大众",
            "model": "朗逸",
            "use_nature": "A",
            "fuel_type": "A",
        },
        "repair_date": (settle - timedelta(days=1)).isoformat(),
        "settle_date": settle.isoformat(),
        "mileage_km": mileage,
        "fault_description": fault,
        "repair_type": "40",
        "items": item_rows,
        "parts": part_rows,
        "totals": {
            "labour": str(labour),
            "parts": str(part_total),
            "other": "10.00",
            "total": str(labour + part_total + Decimal("10.00")),
        },
    }


def make_id_number(rng: random.Random | None = None) -> str:
    """A resident ID number of someone born in Nanjing (320102) between 1960 and 1999."""
    rng = rng or random.Random()
    born = f"{rng.randint(1960, 1999)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"320102{born}{rng.randint(0, 999):03d}"
    return body + id_check(body)


def make_uscc(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    body = "9132" + "".join(rng.choice(USCC_ALPHABET) for _ in range(13))
    return body + uscc_check(body)


def make_enterprise(uscc: str | None = None, name: str = "南京示例汽车维修有限公司") -> dict[str, Any]:
    return {
        "uscc": uscc or make_uscc(),
        "name": name,
        "licence_no": "苏交运管许可宁字320100001234号",
        "category": "1",
        "region_code": "320102",
        "address": "南京市玄武区示例路 1 号",
        "contact_name": "王师傅",
        "contact_phone": "025-88888888",
    }


def roster_row(
    enterprise: dict[str, Any], status: str = "有效", valid_until: str = "2099-12-31"
) -> dict[str, str]:
    """The licence roster's row (docs/operations.md columns) for an enterprise profile as above."""
    category = {"1": "一类", "2": "二类", "3": "三类"}.get(enterprise.get("category") or "", "三类")
    return {
        "统一社会信用代码": enterprise["uscc"],
        "企业名称": enterprise["name"],
        "许可证号": enterprise["licence_no"],
        "经营类别": category,
        "所在地区": enterprise["region_code"],
        "许可状态": status,
        "有效期至": valid_until,
    }


def roster_csv(rows: list[dict[str, str]]) -> str:
    """Roster rows as the CSV file `app-admin roster import` reads."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
