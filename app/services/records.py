"""Ingesting repair records: idempotent on (enterprise, settlement number), every change a new version.

Concurrency: the head row of a record is created with INSERT … ON CONFLICT DO NOTHING, else locked
FOR UPDATE, so two uploads of the same settlement number serialize on it: neither duplicates the
record nor overwrites the other's version.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

from psycopg.types.json import Jsonb
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from app.db.models import RecordVersion, RepairRecord
from app.domain.clock import now
from app.domain.errors import AppError
from app.domain.record import RecordIn, content_digest
from app.domain.reference import home_region
from app.security.querycodes import QueryCodes

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class NewVersion:
    """A version just written, as the exchange outbox needs it (app.services.outbox)."""

    row: dict[str, Any]  # the record_version row as inserted
    record: RecordIn | None  # the uploaded content; None for a withdrawal


# Called in the transaction that wrote the versions, so their outbox rows commit or roll back with them.
VersionSink = Callable[[Session, list[NewVersion]], None]


@dataclass
class IngestResult:
    outcome: Outcome
    record_id: int
    version: int
    query_code: str
    warnings: list[str] = field(default_factory=list)


def version_row(
    rec: RecordIn,
    record_id: int,
    version: int,
    enterprise_id: int,
    source: str,
    received_at: datetime,
    dig: str,
    content: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record_version row of an uploaded record (`content`: its JSON dump, if already made)."""
    if content is None:
        content = rec.model_dump(mode="json")
    return {
        "record_id": record_id,
        "version": version,
        "received_at": received_at,
        "kind": "upload",
        "source": source,
        "enterprise_id": enterprise_id,
        "settlement_no": rec.settlement_no,
        "vin": rec.vehicle.vin,
        "digest": dig,
        "plate_no": rec.vehicle.plate_no,
        "plate_colour": rec.vehicle.plate_colour,
        "repair_date": rec.repair_date,
        "settle_date": rec.settle_date,
        "mileage_km": rec.mileage_km,
        "fault_description": rec.fault_description,
        "repair_type": rec.repair_type,
        "items": content["items"],
        "parts": content["parts"],
        **(
            {}
            if rec.totals is None
            else {
                "labour_total": rec.totals.labour,
                "parts_total": rec.totals.parts,
                "other_total": rec.totals.other,
                "total": rec.totals.total,
            }
        ),
    }


def withdraw(
    session: Session, enterprise_id: int, settlement_no: str, reason: str, sink: VersionSink | None = None
) -> int:
    """A tombstone version: the record leaves the car's history but every earlier version is kept."""
    head = session.execute(
        select(RepairRecord)
        .where(RepairRecord.enterprise_id == enterprise_id, RepairRecord.settlement_no == settlement_no)
        .with_for_update()
    ).scalar()
    if head is None:
        raise AppError("RECORD_NOT_FOUND", 404)
    if head.status == "withdrawn":
        raise AppError("RECORD_WITHDRAWN", 409)
    received_at = now()
    version = head.current_version + 1
    tomb = f"withdrawn:{version}"
    row = {
        "record_id": head.id,
        "version": version,
        "received_at": received_at,
        "kind": "withdrawal",
        "source": "api",
        "enterprise_id": enterprise_id,
        "settlement_no": settlement_no,
        "vin": head.vin,
        "digest": tomb,
        "settle_date": head.settle_date,
        "withdraw_reason": reason,
    }
    session.execute(insert(RecordVersion), [row])
    head.current_version, head.current_received_at = version, received_at
    head.current_digest, head.status = tomb, "withdrawn"
    if sink is not None:
        sink(session, [NewVersion(row, None)])
    return version


def find(session: Session, enterprise_id: int, settlement_no: str) -> RepairRecord:
    head = session.scalar(
        select(RepairRecord).where(
            RepairRecord.enterprise_id == enterprise_id, RepairRecord.settlement_no == settlement_no
        )
    )
    if head is None:
        raise AppError("RECORD_NOT_FOUND", 404)
    return head


def versions(session: Session, record_id: int) -> list[RecordVersion]:
    return list(
        session.scalars(
            select(RecordVersion).where(RecordVersion.record_id == record_id).order_by(RecordVersion.version)
        )
    )


@dataclass
class BatchItem:
    index: int
    record: RecordIn


def ingest_many(
    session: Session,
    codes: QueryCodes,
    enterprise_id: int,
    batch: list[BatchItem],
    source: str = "api",
    sink: VersionSink | None = None,
) -> dict[int, IngestResult]:
    """The valid records of a request, a handful of set-based statements per round rather than per record.

    A settlement number repeated within one batch goes into a later round, so its versions follow the
    order of the batch. Rows are touched in (VIN, settlement number) order so that concurrent batches
    lock in the same order and rarely deadlock (Database.run retries when they do).
    """
    results: dict[int, IngestResult] = {}
    pending = sorted(batch, key=lambda b: (b.record.vehicle.vin, b.record.settlement_no, b.index))
    while pending:
        seen: set[str] = set()
        now_round: list[BatchItem] = []
        later: list[BatchItem] = []
        for item in pending:
            (later if item.record.settlement_no in seen else now_round).append(item)
            seen.add(item.record.settlement_no)
        results.update(_ingest_round(session, codes, enterprise_id, now_round, source, sink))
        pending = later
    return results


def _recordset(columns: dict[str, str], param: str, alias: str = "u") -> str:
    """`jsonb_to_recordset(:param) AS alias(a t, …)`: a whole batch as one JSON parameter, so a
    statement's text (and its prepared plan) is the same whatever the batch's size, and PostgreSQL
    parses the rows in C rather than the driver escaping array literals in Python."""
    typed = ", ".join(f"{c} {t}" for c, t in columns.items())
    return f"jsonb_to_recordset(CAST(:{param} AS jsonb)) AS {alias}({typed})"


# dates and amounts as their text, which the recordset's column types read back exactly
_as_json = partial(json.dumps, default=str, ensure_ascii=False, separators=(",", ":"))


def _rows(rows: list[dict[str, Any]]) -> Jsonb:
    return Jsonb(rows, dumps=_as_json)


_VEHICLE_FACTS = {
    "plate_no": "text", "plate_colour": "text", "brand": "text", "model": "text", "use_nature": "text",
    "fuel_type": "text", "registration_date": "date", "transport_cert_no": "text", "home_region": "text",
}  # fmt: skip
# newer non-empty facts win; an upload that omits a fact does not erase it
_VEHICLES = (
    f"INSERT INTO vehicle (vin, {', '.join(_VEHICLE_FACTS)}) "
    f"SELECT vin, {', '.join(_VEHICLE_FACTS)} FROM {_recordset({'vin': 'text', **_VEHICLE_FACTS}, 'cars')} "
    "ON CONFLICT (vin) DO UPDATE SET "
    + ", ".join(f"{k} = coalesce(EXCLUDED.{k}, vehicle.{k})" for k in _VEHICLE_FACTS)
    + ", updated_at = now()"
)


def _cars(items: list[BatchItem]) -> Jsonb:
    """The vehicles of a batch, the last word on each, in VIN order (the lock order)."""
    latest: dict[str, RecordIn] = {}
    for item in items:
        latest[item.record.vehicle.vin] = item.record
    cars = [latest[vin].vehicle for vin in sorted(latest)]
    return _rows([{**v.model_dump(), "home_region": home_region(v.plate_no)} for v in cars])


def upsert_vehicles(session: Session, items: list[BatchItem]) -> None:
    """Insert or refresh the vehicles of a batch in one statement."""
    session.execute(text(_VEHICLES), {"cars": _cars(items)})


_HEAD_TYPES = {
    "settlement_no": "text",
    "vin": "text",
    "settle_date": "date",
    "mileage_km": "int",
    "digest": "text",
}
# A version's content columns and their SQL types (the statements below; bench/ingest_bench's COPY).
VERSION_CONTENT_TYPES = {
    "settlement_no": "text", "vin": "text", "digest": "text", "plate_no": "text", "plate_colour": "text",
    "repair_date": "date", "settle_date": "date", "mileage_km": "int", "fault_description": "text",
    "repair_type": "text", "items": "jsonb", "parts": "jsonb", "labour_total": "numeric",
    "parts_total": "numeric", "other_total": "numeric", "total": "numeric",
}  # fmt: skip
_INSERT_VERSIONS = (
    f"INSERT INTO record_version (received_at, kind, source, enterprise_id, record_id, version, "
    f"{', '.join(VERSION_CONTENT_TYPES)}) SELECT :received_at, 'upload', :source, :enterprise_id"
)
# the active repairs of the cars in `vins` as they were when the statement began
_ACTIVE = (
    "SELECT id, NULL, vin, settle_date, mileage_km FROM repair_record "
    "WHERE vin = ANY(CAST(:vins AS text[])) AND status = 'active'"
)
# New records whole: the vehicles (an InitPlan on them makes them go first), the heads that are new
# (a settlement number already known is left to the next statements), their first versions, and for
# the odometer check the cars' active repairs: those before this statement plus the new heads.
_NEW_RECORDS = text(
    f"WITH vehicles AS ({_VEHICLES} RETURNING 1), "
    "heads AS ("
    "INSERT INTO repair_record (enterprise_id, settlement_no, vin, settle_date, mileage_km, current_version, "
    "current_received_at, current_digest, status) "
    "SELECT :enterprise_id, settlement_no, vin, settle_date, mileage_km, 1, :received_at, digest, 'active' "
    f"FROM {_recordset(_HEAD_TYPES, 'heads')} WHERE (SELECT count(*) FROM vehicles) >= 0 "
    "ON CONFLICT (enterprise_id, settlement_no) DO NOTHING "
    "RETURNING id, settlement_no, vin, settle_date, mileage_km), "
    f"versions AS ({_INSERT_VERSIONS}, heads.id, 1, {', '.join(f'v.{c}' for c in VERSION_CONTENT_TYPES)} "
    f"FROM {_recordset(VERSION_CONTENT_TYPES, 'versions', 'v')} JOIN heads USING (settlement_no)) "
    f"SELECT id, settlement_no, vin, settle_date, mileage_km FROM heads UNION ALL {_ACTIVE}"
)
# Known records that changed: their heads moved, their versions written, and the cars' active
# repairs read back, the moved heads as the UPDATE left them (the read sees them as before it).
_CHANGED_RECORDS = text(
    "WITH moved AS ("
    "UPDATE repair_record r SET vin = m.vin, settle_date = m.settle_date, mileage_km = m.mileage_km, "
    "current_version = m.version, current_received_at = :received_at, current_digest = m.digest, "
    "status = 'active' "
    f"FROM {_recordset({'id': 'bigint', **_HEAD_TYPES, 'version': 'int'}, 'moved', 'm')} WHERE r.id = m.id "
    "RETURNING r.id, r.vin, r.settle_date, r.mileage_km), "
    f"versions AS ({_INSERT_VERSIONS}, record_id, version, {', '.join(VERSION_CONTENT_TYPES)} "
    f"FROM {_recordset({'record_id': 'bigint', 'version': 'int', **VERSION_CONTENT_TYPES}, 'versions')}) "
    f"{_ACTIVE} AND id NOT IN (SELECT id FROM moved) "
    "UNION ALL SELECT id, NULL, vin, settle_date, mileage_km FROM moved "
    "WHERE vin = ANY(CAST(:vins AS text[]))"
)


def _head(rec: RecordIn, digest: str, **more: Any) -> dict[str, Any]:
    return {
        "settlement_no": rec.settlement_no,
        "vin": rec.vehicle.vin,
        "settle_date": rec.settle_date,
        "mileage_km": rec.mileage_km,
        "digest": digest,
        **more,
    }


def _mileage_warnings(items: list[BatchItem], ids: dict[str, int], active: list[Any]) -> dict[str, list[str]]:
    """A drop against the car's previous repair is flagged, not refused: odometers get replaced.
    `active`: the active repairs of the items' cars, this round's included."""
    heads: dict[str, list[Any]] = {}
    for h in active:
        heads.setdefault(h.vin, []).append(h)
    out: dict[str, list[str]] = {}
    for item in items:
        rec = item.record
        own = ids[rec.settlement_no]
        earlier = [
            h for h in heads.get(rec.vehicle.vin, ()) if h.id != own and h.settle_date <= rec.settle_date
        ]
        prev = max(earlier, key=lambda h: (h.settle_date, h.id), default=None)
        if prev is not None and prev.mileage_km is not None and rec.mileage_km < prev.mileage_km:
            out[rec.settlement_no] = ["MILEAGE_DECREASED"]
    return out


def _ingest_round(
    session: Session,
    codes: QueryCodes,
    enterprise_id: int,
    items: list[BatchItem],
    source: str,
    sink: VersionSink | None,
) -> dict[int, IngestResult]:
    """Records with distinct settlement numbers: create the new ones, version the changed ones.

    One statement when all are new; otherwise two more: the known heads locked, and the changed ones
    moved with their new versions."""
    received_at = now()
    contents = {i.record.settlement_no: i.record.model_dump(mode="json") for i in items}
    digests = {no: content_digest(c) for no, c in contents.items()}
    rows = {
        no: version_row(i.record, 0, 1, enterprise_id, source, received_at, digests[no], contents[no])
        for i in items
        if (no := i.record.settlement_no)
    }
    common = {"received_at": received_at, "source": source, "enterprise_id": enterprise_id}
    answer = session.execute(
        _NEW_RECORDS,
        {
            **common,
            "cars": _cars(items),
            "heads": _rows([_head(i.record, digests[i.record.settlement_no]) for i in items]),
            "versions": _rows([{c: row.get(c) for c in VERSION_CONTENT_TYPES} for row in rows.values()]),
            "vins": sorted({i.record.vehicle.vin for i in items}),
        },
    ).all()
    created: dict[str, int] = {a.settlement_no: a.id for a in answer if a.settlement_no is not None}
    active = answer  # the cars' active repairs: those from before and the new heads
    existing = {
        h.settlement_no: h
        for h in session.execute(
            select(RepairRecord.id, RepairRecord.settlement_no, RepairRecord.current_version,
                   RepairRecord.current_digest, RepairRecord.status)
            .where(
                RepairRecord.enterprise_id == enterprise_id,
                RepairRecord.settlement_no.in_(sorted(digests.keys() - created.keys())),
            )
            .order_by(RepairRecord.settlement_no)
            .with_for_update()
        )
    } if len(created) < len(items) else {}  # fmt: skip

    results: dict[int, IngestResult] = {}
    written: list[NewVersion] = []
    moved: list[dict[str, Any]] = []
    ids = {**created, **{no: h.id for no, h in existing.items()}}
    for item in items:
        rec, no = item.record, item.record.settlement_no
        if no in created:
            outcome: Outcome = "created"
            version = 1
        else:
            head = existing[no]
            if head.current_digest == digests[no] and head.status == "active":
                results[item.index] = IngestResult(
                    "unchanged", head.id, head.current_version, codes.for_record(head.id)
                )
                continue
            outcome, version = "updated", head.current_version + 1
            moved.append(_head(rec, digests[no], id=head.id, version=version))
        rows[no] |= {"record_id": ids[no], "version": version}
        written.append(NewVersion(rows[no], rec))
        results[item.index] = IngestResult(outcome, ids[no], version, codes.for_record(ids[no]))
    changed = [i for i in items if results[i.index].outcome != "unchanged"]
    if moved:
        versions = [
            {c: rows[m["settlement_no"]].get(c) for c in ("record_id", "version", *VERSION_CONTENT_TYPES)}
            for m in moved
        ]
        active = session.execute(  # the same, after the moves
            _CHANGED_RECORDS,
            {
                **common,
                "moved": _rows(moved),
                "versions": _rows(versions),
                "vins": sorted({i.record.vehicle.vin for i in changed}),
            },
        ).all()
    if written:
        warnings = _mileage_warnings(changed, ids, active)
        for item in items:
            results[item.index].warnings = warnings.get(item.record.settlement_no, [])
        if sink is not None:
            sink(session, written)
    return results

