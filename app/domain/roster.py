"""One row of the province's licence roster (道路运政 licensed repair shops), as the operator imports it.

Columns are named in Chinese, as the transport authority's export names them (docs/operations.md):
统一社会信用代码, 企业名称, 许可证号, 经营类别, 所在地区, 许可状态, 有效期至. Each row is checked
on its own and every problem of a row is reported, so the operator fixes the file in one pass.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.domain.errors import message
from app.domain.reference import code_tables, regions
from app.domain.uscc import uscc_error

COLUMNS = {
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "licence_no": "许可证号",
    "category": "经营类别",
    "region_code": "所在地区",
    "licence_status": "许可状态",
    "valid_until": "有效期至",
}
REQUIRED = ("uscc", "name", "licence_no", "category", "region_code", "licence_status")

# 许可状态 as written in the roster → our code; only "valid" lets a shop work
LICENCE_STATUS = {
    "有效": "valid",
    "正常": "valid",
    "吊销": "revoked",
    "注销": "cancelled",
    "暂停": "suspended",
    "停业": "suspended",
    "过期": "expired",
}
LICENCE_STATUS_NAMES = {"valid": "有效", "revoked": "吊销", "cancelled": "注销", "suspended": "暂停",
                        "expired": "过期"}  # fmt: skip
# 经营类别 short names (GB/T 16739) → the enterprise_category code the app uses
_CATEGORY_SHORT = {"一类": "1", "二类": "2", "三类": "3", "一类摩托车": "M1", "二类摩托车": "M2"}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")
_NO_EXPIRY = {"长期", "长期有效", "无固定期限"}


@dataclass(frozen=True)
class RosterRow:
    uscc: str
    name: str
    licence_no: str
    category: str
    region_code: str
    licence_status: str
    valid_until: date | None

    def in_force(self, today: date) -> bool:
        return licence_in_force(self.licence_status, self.valid_until, today)


def licence_in_force(status: str, valid_until: date | None, today: date) -> bool:
    return status == "valid" and (valid_until is None or valid_until >= today)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # a spreadsheet that stored a region code as a number
    return str(v).replace("\x00", "").strip()


def category_code(v: str) -> str | None:
    names = {name: code for code, name in code_tables()["enterprise_category"].items() if code != "_source"}
    if v in names.values():
        return v
    return _CATEGORY_SHORT.get(v) or names.get(v)


def _date(v: Any) -> date | None:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    text = _text(v)
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def parse_row(raw: dict[str, Any]) -> tuple[RosterRow | None, list[str]]:
    """A roster row keyed by the Chinese column names; the row, or the reasons it is refused."""
    v = {k: _text(raw.get(title)) for k, title in COLUMNS.items()}
    errors = [f"{COLUMNS[k]}: 必填" for k in REQUIRED if not v[k]]
    uscc = v["uscc"].upper()
    if uscc and (err := uscc_error(uscc)):
        errors.append(f"{COLUMNS['uscc']}: {message(err)}")
    if len(v["name"]) > 200:
        errors.append(f"{COLUMNS['name']}: {message('TOO_LONG')}（最多 200 字）")
    if len(v["licence_no"]) > 50:
        errors.append(f"{COLUMNS['licence_no']}: {message('TOO_LONG')}（最多 50 字）")
    category = category_code(v["category"]) if v["category"] else None
    if v["category"] and category is None:
        errors.append(f"{COLUMNS['category']}: 应为 一类、二类、三类（或代码表 enterprise_category 的代码）")
    if v["region_code"] and v["region_code"] not in regions():
        errors.append(f"{COLUMNS['region_code']}: {message('REGION_UNKNOWN')}（应为 6 位行政区划代码）")
    status = LICENCE_STATUS.get(v["licence_status"])
    if v["licence_status"] and status is None:
        errors.append(f"{COLUMNS['licence_status']}: 应为 {'、'.join(LICENCE_STATUS)} 之一")
    valid_until = None
    if v["valid_until"] and v["valid_until"] not in _NO_EXPIRY:
        try:
            valid_until = _date(raw.get(COLUMNS["valid_until"]))
        except ValueError:
            errors.append(
                f"{COLUMNS['valid_until']}: {message('DATE_FORMAT')}（如 2027-12-31，长期有效可留空）"
            )
    if errors:
        return None, errors
    assert category is not None and status is not None
    return RosterRow(uscc, v["name"], v["licence_no"], category, v["region_code"], status, valid_until), []
