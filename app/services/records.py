"""Ingesting repair records: idempotent on (enterprise, settlement number), every change a new version.

Concurrency: the head row of a record is created with INSERT … ON CONFLICT DO NOTHING, else locked
FOR UPDATE, so two uploads of the same settlement number serialize on it: neither duplicates the
record nor overwrites the other's version.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import RecordVersion, RepairRecord, Vehicle
from app.domain.clock import now
from app.domain.errors import AppError
from app.domain.record import RecordIn, digest
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


def _version_row(
    rec: RecordIn,
    record_id: int,
    version: int,
    enterprise_id: int,
    source: str,
    received_at: datetime,
    dig: str,
) -> dict[str, Any]:
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
        "items": [i.model_dump(mode="json") for i in rec.items],
        "parts": [p.model_dump(mode="json") for p in rec.parts],
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


def _upsert_vehicles(session: Session, items: list[BatchItem]) -> None:
    latest: dict[str, dict[str, Any]] = {}
    for item in items:
        v = item.record.vehicle
        latest[v.vin] = {**v.model_dump(), "home_region": home_region(v.plate_no)}
    table = Vehicle.__table__
    stmt = pg_insert(table)
    # newer non-empty facts win; an upload that omits a fact does not erase it
    stmt = stmt.on_conflict_do_update(
        index_elements=["vin"],
        set_={k: func.coalesce(stmt.excluded[k], table.c[k]) for k in _VEHICLE_FACTS}
        | {"updated_at": func.now()},
    )
    session.connection().execute(stmt, [latest[vin] for vin in sorted(latest)])


_VEHICLE_FACTS = (
    "plate_no", "plate_colour", "brand", "model", "use_nature", "fuel_type", "registration_date",
    "transport_cert_no", "home_region",
)  # fmt: skip


def _mileage_warnings(session: Session, items: list[BatchItem], ids: dict[str, int]) -> dict[str, list[str]]:
    """A drop against the car's previous repair is flagged, not refused: odometers get replaced."""
    vins = sorted({i.record.vehicle.vin for i in items})
    heads = session.execute(
        select(RepairRecord.id, RepairRecord.vin, RepairRecord.settle_date, RepairRecord.mileage_km).where(
            RepairRecord.vin.in_(vins), RepairRecord.status == "active"
        )
    ).all()
    out: dict[str, list[str]] = {}
    for item in items:
        rec = item.record
        own = ids[rec.settlement_no]
        earlier = [
            h for h in heads if h.vin == rec.vehicle.vin and h.id != own and h.settle_date <= rec.settle_date
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
    """Records with distinct settlement numbers: create the new ones, version the changed ones."""
    received_at = now()
    digests = {i.record.settlement_no: digest(i.record) for i in items}
    _upsert_vehicles(session, items)
    head_values = [
        {
            "enterprise_id": enterprise_id,
            "settlement_no": i.record.settlement_no,
            "vin": i.record.vehicle.vin,
            "settle_date": i.record.settle_date,
            "mileage_km": i.record.mileage_km,
            "current_version": 1,
            "current_received_at": received_at,
            "current_digest": digests[i.record.settlement_no],
            "status": "active",
        }
        for i in items
    ]
    # Core rather than ORM statements: the ORM's bulk paths do not combine ON CONFLICT with RETURNING
    conn = session.connection()
    heads = RepairRecord.__table__
    inserted = conn.execute(
        pg_insert(heads)
        .on_conflict_do_nothing(index_elements=["enterprise_id", "settlement_no"])
        .returning(heads.c.settlement_no, heads.c.id),
        head_values,
    )
    created: dict[str, int] = {no: rid for no, rid in inserted}
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
    versions: list[dict[str, Any]] = []
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
            moved.append({
                "id": head.id, "vin": rec.vehicle.vin, "settle_date": rec.settle_date,
                "mileage_km": rec.mileage_km, "current_version": version, "current_received_at": received_at,
                "current_digest": digests[no], "status": "active",
            })  # fmt: skip
        versions.append(_version_row(rec, ids[no], version, enterprise_id, source, received_at, digests[no]))
        written.append(NewVersion(versions[-1], rec))
        results[item.index] = IngestResult(outcome, ids[no], version, codes.for_record(ids[no]))
    if moved:
        conn.execute(
            update(heads).where(heads.c.id == bindparam("head_id")),
            [{"head_id": m.pop("id"), **m} for m in moved],
        )
    if versions:
        conn.execute(insert(RecordVersion.__table__), versions)
        warnings = _mileage_warnings(
            session, [i for i in items if results[i.index].outcome != "unchanged"], ids
        )
        for item in items:
            results[item.index].warnings = warnings.get(item.record.settlement_no, [])
        if sink is not None:
            sink(session, written)
    return results


# Public names for the exchange inbox, which stores a peer's records the way an upload is stored
# (issue 23; the ingest branch renames the functions themselves, and these lines then go).
upsert_vehicles = _upsert_vehicles
version_row = _version_row
