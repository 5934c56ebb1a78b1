"""Corrections from the shop portal: a form pre-filled with a record's latest content, submitted as a
re-upload with the same settlement number — the same validators and the same new version as the
collection API (source "portal"), and audited.

Form fields are named by their path in the upload body (`vehicle.vin`, `items.0.fee`, `totals.total`)
so that field errors, which carry the same paths, land beside their inputs.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import RecordVersion, RepairRecord, Vehicle
from app.domain.errors import AppError, FieldError
from app.domain.record import MAX_ITEMS, MAX_PARTS
from app.runtime import Runtime
from app.security.auditlog import Event
from app.security.rbac import Perm, Principal, require
from app.services import collection

VEHICLE = (
    "vin", "plate_no", "plate_colour", "brand", "model", "use_nature", "fuel_type", "registration_date",
    "transport_cert_no",
)  # fmt: skip
HEAD = ("settlement_no", "repair_date", "settle_date", "mileage_km", "fault_description", "repair_type")
ITEM = ("name", "hours", "fee")
PART = ("name", "code", "brand", "quantity", "unit_price", "kind")
TOTALS = ("labour", "parts", "other", "total")
BLANK_ROWS = 2  # empty item and part rows offered for additions
# The form's rows are numbered by the client (`items.7.fee`): the loops below run to the highest
# number, so it is capped at the record's own limits before anything is built (issue 15: one
# `items.999999999.name=x` used to keep a worker busy for minutes).
ROW_LIMITS = {"items": MAX_ITEMS, "parts": MAX_PARTS}
_ROW_KEY = re.compile(r"^(items|parts)\.([0-9]+)\.")


def _row_index(key: str) -> tuple[str, int] | None:
    m = _ROW_KEY.match(key)
    if m is None:
        return None
    digits = m[2]
    # more digits than any limit has: over it, without converting a thousand-digit number
    return m[1], int(digits) if len(digits) <= 6 else 10**6


def check_form(form: Mapping[str, str]) -> None:
    """Refuse, with the limit in the answer, a form numbering rows beyond what a record may have."""
    for key in form:
        found = _row_index(key)
        if found and found[1] >= ROW_LIMITS[found[0]]:
            raise AppError(
                "FORM_TOO_MANY_ITEMS",
                422,
                f"维修项目最多 {MAX_ITEMS} 行，维修配件最多 {MAX_PARTS} 行（字段 {key[:40]} 超出）",
            )


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _json(v: Any) -> Any:
    """Dates and amounts as the upload body writes them (strings), so the body can be sent back."""
    return str(v) if isinstance(v, date | Decimal) else v


def latest_body(session: Session, who: Principal, record_id: int) -> dict[str, Any]:
    """The record's latest uploaded content as an upload body, with what is known of its car."""
    require(who, Perm.SHOP_PORTAL)
    head = session.get(RepairRecord, record_id)
    if head is None or head.enterprise_id != who.enterprise_id:
        raise AppError("RECORD_NOT_FOUND", 404)
    v = session.scalars(
        select(RecordVersion)
        .where(RecordVersion.record_id == record_id, RecordVersion.kind == "upload")
        .order_by(RecordVersion.version.desc())
        .limit(1)
    ).one()
    car = session.get(Vehicle, head.vin)
    body: dict[str, Any] = {f: _json(getattr(v, f)) for f in HEAD}
    # the record's own snapshot of the plate; the car's other facts as last known
    facts = {k: _json(getattr(car, k)) for k in VEHICLE[3:]} if car else {}
    body["vehicle"] = {"vin": head.vin, "plate_no": v.plate_no, "plate_colour": v.plate_colour, **facts}
    body["items"] = [{k: item.get(k) for k in ITEM} for item in v.items or []]
    body["parts"] = [{k: part.get(k) for k in PART} for part in v.parts or []]
    cols = ("labour_total", "parts_total", "other_total", "total")
    body["totals"] = {k: _json(getattr(v, c)) for k, c in zip(TOTALS, cols, strict=True)}
    return body


def form_values(body: Mapping[str, Any]) -> dict[str, str]:
    """An upload body as the form's inputs (`vehicle.vin`, `items.0.fee` …)."""
    values = {f: _text(body.get(f)) for f in HEAD}
    values.update({f"vehicle.{k}": _text(val) for k, val in (body.get("vehicle") or {}).items()})
    for kind in ("items", "parts"):
        for i, line in enumerate(body.get(kind) or []):
            values.update({f"{kind}.{i}.{k}": _text(val) for k, val in line.items()})
    values.update({f"totals.{k}": _text(val) for k, val in (body.get("totals") or {}).items()})
    return values


def rows(values: Mapping[str, str], kind: str) -> int:
    """How many item or part rows the form shows: those filled in, and blank ones to add."""
    used = [f[1] for k in values if (f := _row_index(k)) and f[0] == kind]
    return min(max(used) + 1 if used else 0, ROW_LIMITS[kind]) + BLANK_ROWS


def from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The upload body the form describes; blank inputs are left out (the validators say what is
    missing), blank item and part rows dropped. Rows past the limits are refused (check_form)."""
    check_form(form)

    def get(key: str) -> str:
        return str(form.get(key, "")).strip()

    body: dict[str, Any] = {k: get(k) for k in HEAD if get(k)}
    body["vehicle"] = {k: get(f"vehicle.{k}") for k in VEHICLE if get(f"vehicle.{k}")}
    for kind, fields in (("items", ITEM), ("parts", PART)):
        lines = []
        for i in range(rows(form, kind)):
            line = {k: get(f"{kind}.{i}.{k}") for k in fields if get(f"{kind}.{i}.{k}")}
            if line:
                lines.append(line)
        body[kind] = lines
    totals = {k: get(f"totals.{k}") for k in TOTALS if get(f"totals.{k}")}
    if totals:
        body["totals"] = totals
    return body


@dataclass
class Corrected:
    record_id: int | None
    outcome: str | None  # created | updated | unchanged, as an API upload
    version: int | None
    errors: list[FieldError]


def submit(rt: Runtime, who: Principal, body: Any) -> Corrected:
    """Upload the corrected record as the shop's software would (validated like any upload, kept
    with its field errors among the rejections if refused); either way the attempt is audited."""
    require(who, Perm.SHOP_PORTAL)
    assert who.enterprise_id is not None
    outcome = collection.upload(rt, who.enterprise_id, [body], source="portal")[0]
    result = outcome.result
    number = body.get("settlement_no") if isinstance(body, dict) else None
    if result is not None:
        subject, detail = f"record:{result.record_id}", {"outcome": result.outcome, "version": result.version}
    else:
        subject, detail = f"settlement:{number or ''}", {"errors": sorted({e.code for e in outcome.errors})}
    with rt.db.transaction() as s:
        rt.audit.record(
            s,
            Event(
                who.actor_kind,
                str(who.id),
                "record.correct",
                subject,
                "success" if result else "failure",
                {"settlement_no": number, **detail},
                who.request_id,
                who.client_ip,
            ),
        )
    if result is None:
        return Corrected(None, None, None, outcome.errors)
    return Corrected(result.record_id, result.outcome, result.version, [])
