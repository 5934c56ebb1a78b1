"""A repair record as uploaded by an enterprise's software: structure, field rules, cross-field rules.

Field-level rules run inside pydantic (so the OpenAPI schema shows them); rules that look at several
fields at once run in `cross_check`, which reports each problem against the field to fix.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.domain import plate as plates
from app.domain.clock import today_in_china
from app.domain.errors import MESSAGES as MESSAGES_KNOWN
from app.domain.errors import FieldError, message
from app.domain.reference import code_tables
from app.domain.vin import vin_error

MAX_BATCH = 500
# rows of one record: the most an upload, the national envelope or the portal's correction form takes
MAX_ITEMS = 200
MAX_PARTS = 500


def _fail(code: str) -> PydanticCustomError:
    return PydanticCustomError(code, message(code))


def _vin(v: str) -> str:
    v = v.strip().upper()
    if err := vin_error(v):
        raise _fail(err)
    return v


def _plate(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None  # a new car may have no plate yet: the VIN alone identifies it
    v = plates.normalize(v)
    if err := plates.plate_error(v):
        raise _fail(err)
    return v


def _not_future(d: date) -> date:
    if d > today_in_china():
        raise _fail("DATE_IN_FUTURE")
    return d


def _code(table: str) -> AfterValidator:
    def check(v: str | None) -> str | None:
        if v is not None and v not in code_tables()[table]:
            raise _fail("CODE_UNKNOWN")
        return v

    return AfterValidator(check)


Vin = Annotated[
    str,
    Field(
        min_length=17,
        max_length=17,
        description="车辆识别代号（17 位，含第 9 位校验位）",
        examples=["LSVAM4187C2184847"],
    ),
    AfterValidator(_vin),
]
Plate = Annotated[
    str | None,
    Field(
        default=None,
        max_length=10,
        description="号牌号码，新车未上牌可为空",
        examples=["苏A12345", "苏AD12345"],
    ),
    AfterValidator(_plate),
]
PastDate = Annotated[date, AfterValidator(_not_future)]
_CENT = Decimal("0.01")


def _cents(v: Decimal) -> Decimal:
    """50, 50.0 and 50.00 are one amount: normalize so equal payloads have equal digests."""
    return v.quantize(_CENT)


Money = Annotated[Decimal, Field(ge=0, le=Decimal("99999999.99"), decimal_places=2), AfterValidator(_cents)]
Quantity = Annotated[Decimal, Field(gt=0, le=Decimal("999999.99"), decimal_places=2), AfterValidator(_cents)]
Hours = Annotated[Decimal, Field(ge=0, le=Decimal("9999.99"), decimal_places=2), AfterValidator(_cents)]


def _text(max_len: int, description: str, *, required: bool = True) -> Any:
    if required:
        return Field(min_length=1, max_length=max_len, description=description)
    return Field(default=None, max_length=max_len, description=description)


def no_nul(v: Any) -> Any:
    """PostgreSQL text cannot hold NUL: refuse it here, per field, rather than fail the whole insert."""
    if isinstance(v, str) and "\x00" in v:
        raise _fail("TEXT_INVALID")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    _no_nul = field_validator("*", mode="before")(no_nul)


class VehicleIn(_Strict):
    """维修车辆信息"""

    vin: Vin
    plate_no: Plate = None
    plate_colour: Annotated[str | None, _code("plate_colour")] = Field(
        default=None, max_length=2, description="号牌颜色代码（代码表 plate_colour）"
    )
    brand: str | None = _text(50, "车辆品牌", required=False)
    model: str | None = _text(80, "车辆型号", required=False)
    use_nature: Annotated[str | None, _code("use_nature")] = Field(
        default=None, max_length=2, description="使用性质代码（代码表 use_nature）"
    )
    fuel_type: Annotated[str | None, _code("fuel_type")] = Field(
        default=None, max_length=2, description="燃料种类代码（代码表 fuel_type）"
    )
    registration_date: PastDate | None = Field(default=None, description="注册登记日期")
    transport_cert_no: str | None = _text(30, "道路运输证号（营运车辆）", required=False)


class WorkItemIn(_Strict):
    """维修项目"""

    name: str = _text(100, "维修项目名称")
    hours: Hours = Field(description="工时")
    fee: Money | None = Field(default=None, description="工时费（元）；本平台接口必填，仅兼容格式可缺")


class PartIn(_Strict):
    """维修配件"""

    name: str = _text(100, "配件名称")
    code: str | None = _text(50, "配件编码", required=False)
    brand: str | None = _text(50, "配件品牌", required=False)
    quantity: Quantity
    unit_price: Money | None = Field(default=None, description="单价（元）；本平台接口必填，仅兼容格式可缺")
    kind: Annotated[str | None, _code("part_kind")] = Field(
        default=None, max_length=2, description="配件属性代码（代码表 part_kind）；本平台接口必填"
    )


class TotalsIn(_Strict):
    """结算金额：labour = Σ项目工时费，parts = Σ(数量×单价)，total = labour + parts + other"""

    labour: Money = Field(description="工时费合计")
    parts: Money = Field(description="材料费合计")
    other: Money = Field(default=Decimal("0.00"), description="其他费用")
    total: Money = Field(description="结算总额")


class RecordIn(_Strict):
    """一条维修记录（以企业 + 结算清单编号为幂等键）"""

    settlement_no: str = Field(
        min_length=1,
        max_length=50,
        pattern=r"^[\x21-\x7e]+$",
        description="结算清单编号（企业内唯一，可见 ASCII 字符）",
    )
    vehicle: VehicleIn
    repair_date: PastDate = Field(description="送修日期")
    settle_date: PastDate = Field(description="结算日期，不早于送修日期")
    mileage_km: int = Field(ge=0, le=9_999_999, description="送修里程（公里）")
    fault_description: str = _text(1000, "故障描述")
    repair_type: Annotated[str | None, _code("repair_type")] = Field(
        default=None, max_length=2, description="维修类别代码（代码表 repair_type）；本平台接口必填"
    )
    items: list[WorkItemIn] = Field(default_factory=list, max_length=MAX_ITEMS, description="维修项目")
    parts: list[PartIn] = Field(default_factory=list, max_length=MAX_PARTS, description="维修配件")
    totals: TotalsIn | None = Field(default=None, description="结算金额；本平台接口必填，仅兼容格式可缺")


def _missing_amounts(rec: RecordIn) -> list[FieldError]:
    """Our own API requires every amount; the national format carries none, so only it may omit them."""
    missing = [f"items.{n}.fee" for n, i in enumerate(rec.items) if i.fee is None]
    missing += [
        f"parts.{n}.{k}"
        for n, p in enumerate(rec.parts)
        for k in ("unit_price", "kind")
        if getattr(p, k) is None
    ]
    missing += [k for k in ("repair_type", "totals") if getattr(rec, k) is None]
    return [FieldError.of(f, "REQUIRED") for f in missing]


def cross_check(rec: RecordIn, complete: bool = True) -> list[FieldError]:
    """Rules spanning several fields; each error names the field an integrator should fix.

    `complete` demands every amount (our API); without it amounts are checked only when all are given.
    """
    errors = _missing_amounts(rec) if complete else []
    if rec.settle_date < rec.repair_date:
        errors.append(FieldError.of("settle_date", "SETTLE_BEFORE_REPAIR"))
    if (
        errors
        or rec.totals is None
        or any(i.fee is None for i in rec.items)
        or any(p.unit_price is None for p in rec.parts)
    ):
        return errors
    labour = sum((i.fee or Decimal(0) for i in rec.items), Decimal(0))
    parts = sum(((p.quantity * (p.unit_price or Decimal(0))).quantize(_CENT) for p in rec.parts), Decimal(0))
    t = rec.totals
    # shop software may round the parts total once instead of per line: allow half a cent per line
    checks = (
        ("totals.labour", t.labour, labour, Decimal(0)),
        ("totals.parts", t.parts, parts, _CENT / 2 * len(rec.parts)),
        ("totals.total", t.total, t.labour + t.parts + t.other, Decimal(0)),
    )
    for field, stated, expected, slack in checks:
        if abs(stated - expected) > slack:
            text = f"{message('AMOUNT_MISMATCH')}：应为 {expected}"
            errors.append(FieldError(field, "AMOUNT_MISMATCH", text))
    return errors


_NUMERIC = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "decimal_max_places",
    "decimal_max_digits",
    "decimal_parsing",
    "decimal_type",
    "int_parsing",
    "int_type",
    "int_from_float",
    "finite_number",
    "decimal_whole_digits",
}
_GENERIC = {
    "missing": "REQUIRED",
    "string_too_long": "TOO_LONG",
    "string_too_short": "TOO_SHORT",
    "too_long": "TOO_MANY_ITEMS",
    "extra_forbidden": "EXTRA_FIELD",
    "date_parsing": "DATE_FORMAT",
    "date_from_datetime_parsing": "DATE_FORMAT",
    "date_from_datetime_inexact": "DATE_FORMAT",
    "date_type": "DATE_FORMAT",
    "string_pattern_mismatch": "WRONG_TYPE",
}


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Translate pydantic's errors into the platform's codes, one per offending field."""
    out: list[FieldError] = []
    for e in errors:
        loc = tuple(str(p) for p in e["loc"])
        typ = e["type"]
        if typ in MESSAGES_KNOWN:
            code = typ
        elif typ in _NUMERIC:
            code = "MILEAGE_INVALID" if loc and loc[-1] == "mileage_km" else "AMOUNT_INVALID"
        else:
            code = _GENERIC.get(typ, "WRONG_TYPE")
        out.append(FieldError.of(".".join(loc), code))
    return out


_RECORD = TypeAdapter(RecordIn)


def parse_record(raw: Any, complete: bool = True) -> tuple[RecordIn | None, list[FieldError]]:
    """Structure, field and cross-field validation of one raw record; nothing here touches storage."""
    try:
        rec = _RECORD.validate_python(raw)
    except ValidationError as exc:
        return None, field_errors(exc.errors())
    errors = cross_check(rec, complete)
    return (None, errors) if errors else (rec, [])


def digest(rec: RecordIn) -> str:
    """A stable fingerprint of the content: equal payloads are the same version."""
    return content_digest(rec.model_dump(mode="json"))


def content_digest(content: dict[str, Any]) -> str:
    """`digest` of a record already dumped with `model_dump(mode="json")`."""
    canon = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()
