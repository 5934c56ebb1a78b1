"""Receiving: check who sent each message, then apply it exactly once.

A message is applied only if it comes from a configured peer, over a TLS connection whose client
certificate names that same peer, addressed to this node, and signed with that peer's key; anything
else is rejected, written to the audit log, and never applied. A message that passes those checks
but lies outside the sending peer's authority (app.exchange.authority) is refused the same way and
also kept in `exchange_refusal`, for the operators, the metrics and reconciliation. Applying is
idempotent twice over:
the inbox refuses a message id seen before, and a record version already held is not written again
(a re-requested or replayed message carries a new id but the same version).
"""

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    Enterprise,
    ExchangeInbox,
    ExchangeRefusal,
    ExchangeStatistics,
    RecordVersion,
    RepairRecord,
    Vehicle,
)
from app.db.session import Database
from app.domain.clock import CHINA, now
from app.domain.enterprise import EnterpriseIn
from app.domain.record import RecordIn, digest, parse_record
from app.exchange import authority, outbox
from app.exchange.authority import Refusal
from app.exchange.metrics import REFUSED
from app.exchange.node import ExchangeNode, Peer
from app.exchange.signing import verify
from app.security.auditlog import AuditLog, Event
from app.services.records import BatchItem, upsert_vehicles, version_row

log = logging.getLogger("app.exchange")
_REGION = re.compile(r"^\d{6}$")

Status = Literal["applied", "duplicate", "rejected"]
ENVELOPE = ("id", "kind", "from", "to", "created_at", "body", "sig")


class Rejected(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code, self.detail = code, detail


@dataclass
class Result:
    id: str
    status: Status
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, **({"code": self.code} if self.code else {})}


def authenticate(node: ExchangeNode, caller_cn: str | None, message: Any) -> Peer:
    """The peer that sent `message`, or Rejected with the reason; nothing is trusted before this."""
    if not isinstance(message, dict) or any(k not in message for k in ENVELOPE):
        raise Rejected("MESSAGE_MALFORMED")
    try:
        uuid.UUID(str(message["id"]))
    except ValueError as exc:
        raise Rejected("MESSAGE_MALFORMED", "id") from exc
    peer = node.peers.get(str(message["from"]))
    if peer is None:
        raise Rejected("PEER_UNKNOWN")
    if caller_cn != peer.name:
        raise Rejected("PEER_CERT_MISMATCH", f"certificate {caller_cn!r}, message from {peer.name!r}")
    if message["to"] != node.name:
        raise Rejected("WRONG_RECIPIENT")
    if not verify(peer.key, message):
        raise Rejected("SIGNATURE_INVALID")
    return peer


def audit_rejection(
    db: Database, audit: AuditLog, caller_cn: str | None, message: Any, err: Rejected, client_ip: str | None
) -> None:
    mid = str(message.get("id"))[:60] if isinstance(message, dict) else "-"
    sender = str(message.get("from"))[:60] if isinstance(message, dict) else "-"
    with db.transaction() as s:
        audit.record(
            s,
            Event(
                "exchange_peer",
                (caller_cn or sender or "-")[:60],
                "exchange.receive",
                f"message:{mid}"[:60],
                "failure",
                {"reason": err.code, "detail": err.detail[:200], "from": sender},
                None,
                client_ip,
            ),
        )
    log.warning("exchange message rejected", extra={"message_id": mid, "sender": sender, "reason": err.code})


@dataclass
class RecordMsg:
    """A record.version message that passed every check that needs no database."""

    id: str
    body: dict[str, Any]
    enterprise: EnterpriseIn
    settlement_no: str
    version: int
    kind: str
    digest: str
    vin: str
    settle: date
    parsed: RecordIn | None
    withdraw_reason: str | None
    origin_region: str
    origin_at: datetime

    @property
    def key(self) -> str:
        return outbox.record_key(self.enterprise.uscc, self.settlement_no, self.version)


def check_record(mid: str, body: Any) -> RecordMsg:
    try:
        origin, rec = body["origin"], body["record"]
        origin_region, origin_at = str(origin["region_code"])[:6], datetime.fromisoformat(origin["at"])
        version, kind, dig = int(rec["version"]), rec["kind"], str(rec["digest"])
        settlement_no, vin = str(rec["settlement_no"]), str(rec["vin"])
        settle = date.fromisoformat(rec["settle_date"]) if rec.get("settle_date") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected("MESSAGE_MALFORMED", repr(exc)) from exc
    if not 1 <= version < 2**31 or origin_at.tzinfo is None:
        raise Rejected("MESSAGE_MALFORMED", "version or origin.at")
    if not _REGION.match(origin_region):  # authority is decided by this code: no partial prefixes
        raise Rejected("MESSAGE_MALFORMED", "origin.region_code")
    try:
        ent = EnterpriseIn.model_validate(body.get("enterprise"))
    except ValidationError as exc:
        raise Rejected("ENTERPRISE_INVALID", str(exc.errors()[:1])) from exc
    parsed = None
    reason = None
    if kind == "upload":
        parsed, errors = parse_record(rec.get("content"), complete=False)
        if parsed is None:
            raise Rejected("VALIDATION_FAILED", ",".join(f"{e.field}:{e.code}" for e in errors)[:200])
        if digest(parsed) != dig or parsed.settlement_no != settlement_no or parsed.vehicle.vin != vin:
            raise Rejected("DIGEST_MISMATCH")
        settle = parsed.settle_date
    elif kind == "withdrawal":
        reason = rec.get("withdraw_reason")
        if dig != f"withdrawn:{version}" or not isinstance(reason, str) or not reason or settle is None:
            raise Rejected("MESSAGE_MALFORMED", "withdrawal")
    else:
        raise Rejected("MESSAGE_MALFORMED", "record.kind")
    assert settle is not None
    return RecordMsg(
        mid,
        body,
        ent,
        settlement_no,
        version,
        kind,
        dig,
        vin,
        settle,
        parsed,
        reason,
        origin_region,
        origin_at,
    )


@dataclass
class Refused:
    """A message from an authenticated peer outside its authority (a statistics report: some rows)."""

    message: dict[str, Any]
    record: RecordMsg | None
    refusal: Refusal


def receive(
    node: ExchangeNode,
    db: Database,
    audit: AuditLog,
    caller_cn: str | None,
    messages: list[Any],
    client_ip: str | None = None,
) -> list[Result]:
    """Checks each message, then applies the records of the batch together, in one transaction.

    A message refused by a check is answered `rejected` on its own; the rest are applied with a few
    set-based statements per round, like uploads (app.services.records): a failure there fails the
    request, and the sender sends the batch again (what was applied is then `duplicate`). Messages
    outside the peer's authority are answered `rejected` as well (final for the sender, which
    dead-letters them) and recorded after the batch, with their audit events, in one transaction.
    """
    results: dict[int, Result] = {}
    records: list[tuple[int, RecordMsg]] = []
    others: list[tuple[int, Peer, dict[str, Any]]] = []
    refused: dict[str, Refused] = {}
    peer: Peer | None = None
    for i, m in enumerate(messages):
        mid = str(m.get("id")) if isinstance(m, dict) else ""
        try:
            peer = authenticate(node, caller_cn, m)
            if m["kind"] == outbox.RECORD:
                rec = check_record(mid, m["body"])
                no = authority.check_record(node, peer, rec.enterprise.region_code, rec.origin_region)
                if no is None:
                    records.append((i, rec))
                    continue
                refused[mid] = Refused(m, rec, no)
            elif m["kind"] == outbox.STATISTICS:
                no = authority.check_statistics(node, peer)
                if no is None:
                    partly = authority.outside(peer, _statistics_regions(m["body"]))
                    if partly is not None:  # applied without those rows, and they are reported
                        refused[mid] = Refused(m, None, partly)
                    others.append((i, peer, m))
                    continue
                refused[mid] = Refused(m, None, no)
            else:
                raise Rejected("KIND_UNKNOWN")
            results[i] = Result(mid, "rejected", no.code)
        except Rejected as err:
            audit_rejection(db, audit, caller_cn, m, err, client_ip)
            results[i] = Result(mid, "rejected", err.code)
    if records:
        assert peer is not None  # every message authenticated as the connection's one peer
        sender = peer
        statuses, held = db.run(lambda s: apply_records(node, s, sender, [r for _, r in records]))
        first: set[str] = set()
        for i, r in records:  # a repeated id within the request: its later copies are duplicates
            if r.id in held:
                refused[r.id] = Refused(messages[i], r, held[r.id])
                results[i] = Result(r.id, "rejected", held[r.id].code)
                continue
            results[i] = Result(r.id, statuses[r.id] if r.id not in first else "duplicate")
            first.add(r.id)
    for i, p, m in others:
        try:
            results[i] = Result(m["id"], db.run(lambda s, p=p, m=m: apply_other(s, p, m)))
        except Rejected as err:
            audit_rejection(db, audit, caller_cn, m, err, client_ip)
            results[i] = Result(m["id"], "rejected", err.code)
    if refused:
        assert peer is not None
        who = peer
        new = db.run(lambda s: record_refusals(s, audit, who, caller_cn, refused, client_ip))
        for code in new:
            REFUSED.labels(who.name, code).inc()
    return [results[i] for i in range(len(messages))]


def _statistics_regions(body: Any) -> list[str]:
    try:
        return [str(d["region_code"])[:6] for d in body["days"]]
    except (KeyError, TypeError) as exc:
        raise Rejected("MESSAGE_MALFORMED", repr(exc)) from exc


def record_refusals(
    session: Session,
    audit: AuditLog,
    peer: Peer,
    caller_cn: str | None,
    refused: dict[str, Refused],
    client_ip: str | None,
) -> list[str]:
    """Refused messages into `exchange_refusal` (each id once) and the audit log; returns the codes of
    those not refused before (a re-sent copy is not counted twice)."""
    rows = []
    for mid, x in refused.items():
        rec = x.record
        rows.append(
            {
                "message_id": mid,
                "sender": peer.name,
                "kind": str(x.message.get("kind"))[:30],
                "msg_key": rec.key[:120] if rec is not None else None,
                "code": x.refusal.code,
                "detail": x.refusal.detail[:500],
                "enterprise_region": rec.enterprise.region_code if rec is not None else None,
                "origin_region": rec.origin_region if rec is not None else None,
                "origin_day": rec.origin_at.astimezone(CHINA).date() if rec is not None else None,
            }
        )
    new = session.execute(
        pg_insert(ExchangeRefusal)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(ExchangeRefusal.code)
    ).scalars()
    codes = list(new)
    for mid, x in refused.items():
        audit.record(
            session,
            Event(
                "exchange_peer",
                (caller_cn or peer.name)[:60],
                "exchange.receive",
                f"message:{mid}"[:60],
                "failure",
                {"reason": x.refusal.code, "detail": x.refusal.detail[:200], "from": peer.name},
                None,
                client_ip,
            ),
        )
    log.warning(
        "exchange messages refused: outside the peer's authority",
        extra={
            "sender": peer.name,
            "refused": len(refused),
            "codes": sorted({x.refusal.code for x in refused.values()}),
        },
    )
    return codes


def _first_time(session: Session, peer: Peer, rows: list[dict[str, Any]]) -> set[str]:
    """Message ids not seen before, now in the inbox (same transaction as their effect)."""
    if not rows:
        return set()
    new = session.execute(
        pg_insert(ExchangeInbox)
        .values([{**r, "sender": peer.name, "outcome": "applied"} for r in rows])
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(ExchangeInbox.message_id)
    ).scalars()
    return {str(x) for x in new}


def apply_other(session: Session, peer: Peer, m: dict[str, Any]) -> Status:
    if not _first_time(session, peer, [{"message_id": m["id"], "kind": m["kind"], "msg_key": None}]):
        return "duplicate"
    return apply_statistics(session, peer, m["body"])


def _enterprise_ids(session: Session, ents: list[EnterpriseIn]) -> dict[str, int]:
    distinct = {e.uscc: e for e in ents}
    session.execute(
        pg_insert(Enterprise)
        .values([distinct[u].model_dump() for u in sorted(distinct)])
        .on_conflict_do_nothing(index_elements=["uscc"])
    )
    found = session.execute(
        select(Enterprise.uscc, Enterprise.id).where(Enterprise.uscc.in_(sorted(distinct)))
    )
    return {u: i for u, i in found}


def apply_records(
    node: ExchangeNode, session: Session, peer: Peer, msgs: list[RecordMsg]
) -> tuple[dict[str, Status], dict[str, Refusal]]:
    """Statuses by message id: repeats of an id (in the batch or before) and versions already held are
    `duplicate`; every other version is stored, its record's head moved forward, and routed onward.
    Second: the refused, versions of records held here that the peer may not change (authority)."""
    status: dict[str, Status] = {}
    unique: list[RecordMsg] = []
    for m in msgs:
        if m.id in status:
            continue
        status[m.id] = "duplicate"
        unique.append(m)
    # a record's origin is fixed by its first version: within a batch, its first message names it
    origin: dict[tuple[str, str], str] = {}
    for m in unique:
        origin.setdefault((m.enterprise.uscc, m.settlement_no), m.origin_region)
    held = authority.held_conflicts(session, origin)
    named = {m.enterprise.uscc: m.enterprise.region_code for m in unique}
    barred = authority.enterprise_conflicts(session, named)
    refused: dict[str, Refusal] = {}
    for m in unique:
        k = (m.enterprise.uscc, m.settlement_no)
        if m.enterprise.uscc in barred:
            refused[m.id] = barred[m.enterprise.uscc]
        elif k in held:
            refused[m.id] = held[k]
        elif m.origin_region != origin[k]:
            refused[m.id] = Refusal(authority.ORIGIN_CONFLICT, f"{k[0]}/{k[1]}: two origins in one batch")
    unique = [m for m in unique if m.id not in refused]
    new_ids = _first_time(
        session, peer, [{"message_id": m.id, "kind": outbox.RECORD, "msg_key": m.key} for m in unique]
    )
    fresh = [m for m in unique if m.id in new_ids]
    if not fresh:
        return status, refused
    ent_ids = _enterprise_ids(session, [m.enterprise for m in fresh])
    uploads = [m for m in fresh if m.parsed is not None]
    if uploads:
        upsert_vehicles(session, [BatchItem(i, m.parsed) for i, m in enumerate(uploads) if m.parsed])
    applied: list[RecordMsg] = []
    pending = sorted(fresh, key=lambda m: (m.enterprise.uscc, m.settlement_no, m.version))
    while pending:  # a record with several versions in the batch: one version per round
        seen: set[tuple[str, str]] = set()
        now_round, later = [], []
        for m in pending:
            k = (m.enterprise.uscc, m.settlement_no)
            (later if k in seen else now_round).append(m)
            seen.add(k)
        applied += _apply_round(session, now_round, ent_ids)
        pending = later
    applied_ids = {m.id for m in applied}
    held = [m.id for m in fresh if m.id not in applied_ids]
    if held:
        session.execute(
            update(ExchangeInbox).where(ExchangeInbox.message_id.in_(held)).values(outcome="duplicate")
        )
    for m in applied:
        status[m.id] = "applied"
    plates = {m.vin: m.parsed.vehicle.plate_no for m in applied if m.parsed is not None}
    bare = sorted({m.vin for m in applied if m.parsed is None} - plates.keys())
    if bare:
        plates |= {
            v: p
            for v, p in session.execute(select(Vehicle.vin, Vehicle.plate_no).where(Vehicle.vin.in_(bare)))
        }
    items = [(m.body, plates.get(m.vin)) for m in applied]
    outbox.write(session, outbox.route_records(node, session, items, peer.name))
    return status, refused


def _apply_round(session: Session, msgs: list[RecordMsg], ent_ids: dict[str, int]) -> list[RecordMsg]:
    """Messages of distinct records: returns those whose version was new here."""
    received_at = now()
    heads = RepairRecord.__table__
    conn = session.connection()

    def head_values(m: RecordMsg) -> dict[str, Any]:
        return {
            "vin": m.vin,
            "settle_date": m.settle,
            "current_version": m.version,
            "current_received_at": received_at,
            "current_digest": m.digest,
            "status": "active" if m.kind == "upload" else "withdrawn",
        }

    def mileage(m: RecordMsg) -> dict[str, Any]:
        return {"mileage_km": m.parsed.mileage_km if m.parsed is not None else None}

    ident = {m.id: (ent_ids[m.enterprise.uscc], m.settlement_no) for m in msgs}
    created = {
        (e, no): rid
        for e, no, rid in conn.execute(
            pg_insert(heads)
            .on_conflict_do_nothing(index_elements=["enterprise_id", "settlement_no"])
            .returning(heads.c.enterprise_id, heads.c.settlement_no, heads.c.id),
            [
                {
                    "enterprise_id": ident[m.id][0],
                    "settlement_no": m.settlement_no,
                    **head_values(m),
                    **mileage(m),
                }
                for m in msgs
            ],
        )
    }
    rest = sorted({ident[m.id] for m in msgs} - created.keys())
    existing = {}
    if rest:
        existing = {
            (r.enterprise_id, r.settlement_no): r
            for r in session.execute(
                select(
                    RepairRecord.id,
                    RepairRecord.enterprise_id,
                    RepairRecord.settlement_no,
                    RepairRecord.current_version,
                )
                .where(tuple_(RepairRecord.enterprise_id, RepairRecord.settlement_no).in_(rest))
                .order_by(RepairRecord.enterprise_id, RepairRecord.settlement_no)
                .with_for_update()
            )
        }
    ids = {**created, **{k: r.id for k, r in existing.items()}}
    held: set[tuple[int, int]] = set()
    if existing:
        wanted = [(ids[ident[m.id]], m.version) for m in msgs if ident[m.id] in existing]
        held = {
            (r, v)
            for r, v in session.execute(
                select(RecordVersion.record_id, RecordVersion.version).where(
                    tuple_(RecordVersion.record_id, RecordVersion.version).in_(wanted)
                )
            )
        }
    rows, moved, moved_upload, applied = [], [], [], []
    for m in msgs:
        k = ident[m.id]
        rid = ids[k]
        if (rid, m.version) in held:
            continue
        if k in existing and m.version > existing[k].current_version:
            # versions may arrive out of order: the head moves forward only (a withdrawal keeps the mileage)
            if m.parsed is not None:
                moved_upload.append({"head_id": rid, **head_values(m), **mileage(m)})
            else:
                moved.append({"head_id": rid, **head_values(m)})
        if m.parsed is not None:
            row = version_row(m.parsed, rid, m.version, k[0], "exchange", received_at, m.digest)
        else:
            row = {
                "record_id": rid,
                "version": m.version,
                "received_at": received_at,
                "kind": "withdrawal",
                "enterprise_id": k[0],
                "settlement_no": m.settlement_no,
                "vin": m.vin,
                "digest": m.digest,
                "settle_date": m.settle,
                "withdraw_reason": (m.withdraw_reason or "")[:500],
            }
        rows.append(row | {"source": "exchange", "origin_region": m.origin_region, "origin_at": m.origin_at})
        applied.append(m)
    for batch in (moved, moved_upload):
        if batch:
            conn.execute(update(heads).where(heads.c.id == bindparam("head_id")), batch)
    if rows:
        conn.execute(insert(RecordVersion.__table__), rows)
    return applied


def apply_statistics(session: Session, peer: Peer, body: dict[str, Any]) -> Status:
    try:
        generated = datetime.fromisoformat(body["generated_at"])
        rows = [
            {
                "sender": peer.name,
                "day": date.fromisoformat(d["day"]),
                "region_code": str(d["region_code"])[:6],
                "records": int(d["records"]),
                "detail": d.get("detail") or {},
                "generated_at": generated,
            }
            for d in body["days"]
            if peer.holds(str(d["region_code"])[:6])  # only the sender's own regions (authority)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected("MESSAGE_MALFORMED", repr(exc)) from exc
    if rows:
        stmt = pg_insert(ExchangeStatistics).values(rows)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["sender", "day", "region_code"],
                set_={c: stmt.excluded[c] for c in ("records", "detail", "generated_at", "received_at")},
                where=ExchangeStatistics.generated_at < stmt.excluded.generated_at,
            )
        )
    return "applied"
