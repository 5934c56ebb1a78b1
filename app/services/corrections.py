"""Corrections from the shop portal: a form pre-filled with a record's latest content, submitted as a
re-upload with the same settlement number — the same validators and the same new version as the
collection API (source "portal"), and audited.

Form fields are named by their path in the upload body (`vehicle.vin`, `items.0.fee`, `totals.total`)
so that field errors, which carry the same paths, land beside their inputs.
"""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import RecordVersion, RepairRecord, Vehicle
from app.domain.errors import AppError, FieldError
from app.runtime import Runtime
from app.security.auditlog import Event
from app.security.rbac import Perm, Principal, require
from app.services import collection

VEHICLE = ("vin", "plate_no", "plate_colour", "brand", "model")
HEAD = ("settlement_no", "repair_date", "settle_date", "mileage_km", "fault_description", "repair_type")
ITEM = ("name", "hours", "fee")
PART = ("name", "code", "brand", "quantity", "unit_price", "kind")
TOTALS = ("labour", "parts", "other", "total")
BLANK_ROWS = 2  # empty item and part rows offered for additions


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def prefill(session: Session, who: Principal, record_id: int) -> dict[str, str]:
    """The form's values: the record's latest uploaded content and what is known of its car."""
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
    values = {f: _text(getattr(v, f)) for f in HEAD}
    values["vehicle.vin"] = head.vin
    values["vehicle.plate_no"] = _text(v.plate_no)
    values["vehicle.plate_colour"] = _text(v.plate_colour)
    values["vehicle.brand"] = _text(car.brand if car else None)
    values["vehicle.model"] = _text(car.model if car else None)
    for i, item in enumerate(v.items or []):
        values.update({f"items.{i}.{k}": _text(item.get(k)) for k in ITEM})
    for i, part in enumerate(v.parts or []):
        values.update({f"parts.{i}.{k}": _text(part.get(k)) for k in PART})
    for k, col in zip(TOTALS, ("labour_total", "parts_total", "other_total", "total"), strict=True):
        values[f"totals.{k}"] = _text(getattr(v, col))
    return values


def rows(values: Mapping[str, str], kind: str) -> int:
    """How many item or part rows the form shows: those filled in, and blank ones to add."""
    used = [int(k.split(".")[1]) for k in values if k.startswith(kind + ".") and k.split(".")[1].isdigit()]
    return (max(used) + 1 if used else 0) + BLANK_ROWS


def from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The upload body the form describes; blank inputs are left out (the validators say what is
    missing), blank item and part rows dropped."""

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


def submit(rt: Runtime, who: Principal, form: Mapping[str, str]) -> tuple[int | None, list[FieldError]]:
    """Upload the corrected record as the shop's software would; returns (record id, no errors) or
    (None, the field errors). Either way the attempt is audited."""
    require(who, Perm.SHOP_PORTAL)
    assert who.enterprise_id is not None
    body = from_form(form)
    outcome = collection.upload(rt, who.enterprise_id, [body], source="portal")[0]
    result = outcome.result
    with rt.db.transaction() as s:
        rt.audit.record(
            s,
            Event(
                who.actor_kind,
                str(who.id),
                "record.correct",
                f"record:{result.record_id}" if result else f"settlement:{body.get('settlement_no', '')}",
                "success" if result else "failure",
                {
                    "settlement_no": body.get("settlement_no"),
                    "outcome": result.outcome,
                    "version": result.version,
                }
                if result
                else {
                    "settlement_no": body.get("settlement_no"),
                    "errors": sorted({e.code for e in outcome.errors}),
                },
                who.request_id,
                who.client_ip,
            ),
        )
    return (result.record_id, []) if result else (None, outcome.errors)
