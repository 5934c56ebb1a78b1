"""Receiving: check who sent each message, then apply it exactly once.

A message is applied only if it comes from a configured peer, over a TLS connection whose client
certificate names that same peer, addressed to this node, and signed with that peer's key; anything
else is rejected, written to the audit log, and never applied. Applying is idempotent twice over:
the inbox refuses a message id seen before, and a record version already held is not written again
(a re-requested or replayed message carries a new id but the same version).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    Enterprise,
    ExchangeInbox,
    ExchangeStatistics,
    RecordVersion,
    RepairRecord,
    Vehicle,
)
from app.db.session import Database
from app.domain.clock import now
from app.domain.enterprise import EnterpriseIn
from app.domain.record import digest, parse_record
from app.exchange import outbox
from app.exchange.node import ExchangeNode, Peer
from app.exchange.signing import verify
from app.security.auditlog import AuditLog, Event
from app.services.records import BatchItem, _upsert_vehicles, _version_row

log = logging.getLogger("app.exchange")

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


def receive(
    node: ExchangeNode,
    db: Database,
    audit: AuditLog,
    caller_cn: str | None,
    messages: list[Any],
    client_ip: str | None = None,
) -> list[Result]:
    """Each message in its own transaction, in order: one refused message does not hold up the rest."""
    out = []
    for m in messages:
        mid = str(m.get("id")) if isinstance(m, dict) else ""
        try:
            peer = authenticate(node, caller_cn, m)
            status = db.run(lambda s, m=m, peer=peer: apply(node, s, peer, m))
            out.append(Result(mid, status))
        except Rejected as err:
            audit_rejection(db, audit, caller_cn, m, err, client_ip)
            out.append(Result(mid, "rejected", err.code))
    return out


def apply(node: ExchangeNode, session: Session, peer: Peer, m: dict[str, Any]) -> Status:
    body = m["body"]
    key = None
    if m["kind"] == outbox.RECORD:
        rec = body.get("record") or {}
        key = outbox.record_key(
            str(body.get("enterprise", {}).get("uscc")),
            str(rec.get("settlement_no")),
            int(rec.get("version", 0)),
        )
    first = session.execute(
        pg_insert(ExchangeInbox)
        .values(
            message_id=m["id"], sender=peer.name, kind=str(m["kind"])[:30], msg_key=key, outcome="applied"
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(ExchangeInbox.message_id)
    ).first()
    if first is None:
        return "duplicate"
    if m["kind"] == outbox.RECORD:
        status = apply_record(node, session, peer, body)
    elif m["kind"] == outbox.STATISTICS:
        status = apply_statistics(session, peer, body)
    else:
        raise Rejected("KIND_UNKNOWN")
    if status == "duplicate":
        session.execute(
            update(ExchangeInbox).where(ExchangeInbox.message_id == m["id"]).values(outcome=status)
        )
    return status


def _enterprise_id(session: Session, raw: Any) -> int:
    try:
        ent = EnterpriseIn.model_validate(raw)
    except ValidationError as exc:
        raise Rejected("ENTERPRISE_INVALID", str(exc.errors()[:1])) from exc
    session.execute(
        pg_insert(Enterprise)
        .values(**ent.model_dump(exclude_none=True))
        .on_conflict_do_nothing(index_elements=["uscc"])
    )
    ent_id = session.scalar(select(Enterprise.id).where(Enterprise.uscc == ent.uscc))
    assert ent_id is not None
    return ent_id


def apply_record(node: ExchangeNode, session: Session, peer: Peer, body: dict[str, Any]) -> Status:
    try:
        origin, rec = body["origin"], body["record"]
        origin_region, origin_at = str(origin["region_code"]), datetime.fromisoformat(origin["at"])
        version, kind, dig = int(rec["version"]), rec["kind"], str(rec["digest"])
        settlement_no, vin = str(rec["settlement_no"]), str(rec["vin"])
        settle = date.fromisoformat(rec["settle_date"]) if rec.get("settle_date") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected("MESSAGE_MALFORMED", repr(exc)) from exc
    if version < 1 or origin_at.tzinfo is None:
        raise Rejected("MESSAGE_MALFORMED", "version or origin.at")
    parsed = None
    if kind == "upload":
        parsed, errors = parse_record(rec.get("content"), complete=False)
        if parsed is None:
            raise Rejected("VALIDATION_FAILED", ",".join(f"{e.field}:{e.code}" for e in errors)[:200])
        if digest(parsed) != dig or parsed.settlement_no != settlement_no or parsed.vehicle.vin != vin:
            raise Rejected("DIGEST_MISMATCH")
        settle = parsed.settle_date
    elif kind == "withdrawal":
        if dig != f"withdrawn:{version}" or not rec.get("withdraw_reason") or settle is None:
            raise Rejected("MESSAGE_MALFORMED", "withdrawal")
    else:
        raise Rejected("MESSAGE_MALFORMED", "record.kind")
    assert settle is not None
    ent_id = _enterprise_id(session, body.get("enterprise"))
    if parsed is not None:
        _upsert_vehicles(session, [BatchItem(0, parsed)])
    received_at = now()
    status = "active" if kind == "upload" else "withdrawn"
    mileage = parsed.mileage_km if parsed is not None else None
    head_values = {
        "vin": vin,
        "settle_date": settle,
        "current_version": version,
        "current_received_at": received_at,
        "current_digest": dig,
        "status": status,
    }
    if mileage is not None:
        head_values["mileage_km"] = mileage
    created = session.scalar(
        pg_insert(RepairRecord)
        .values(enterprise_id=ent_id, settlement_no=settlement_no, **head_values)
        .on_conflict_do_nothing(index_elements=["enterprise_id", "settlement_no"])
        .returning(RepairRecord.id)
    )
    if created is None:
        head = session.execute(
            select(RepairRecord.id, RepairRecord.current_version)
            .where(RepairRecord.enterprise_id == ent_id, RepairRecord.settlement_no == settlement_no)
            .with_for_update()
        ).one()
        record_id = head.id
        held = session.scalar(
            select(RecordVersion.version).where(
                RecordVersion.record_id == record_id, RecordVersion.version == version
            )
        )
        if held is not None:
            return "duplicate"
        # versions may arrive out of order: the head moves forward only
        if version > head.current_version:
            session.execute(update(RepairRecord).where(RepairRecord.id == record_id).values(**head_values))
    else:
        record_id = created
    if parsed is not None:
        row = _version_row(parsed, record_id, version, ent_id, "exchange", received_at, dig)
    else:
        row = {
            "record_id": record_id,
            "version": version,
            "received_at": received_at,
            "kind": "withdrawal",
            "enterprise_id": ent_id,
            "settlement_no": settlement_no,
            "vin": vin,
            "digest": dig,
            "settle_date": settle,
            "withdraw_reason": str(rec["withdraw_reason"])[:500],
        }
    row |= {"source": "exchange", "origin_region": origin_region, "origin_at": origin_at}
    session.execute(insert(RecordVersion), [row])
    if parsed is not None:
        plate = parsed.vehicle.plate_no
    else:
        plate = session.scalar(select(Vehicle.plate_no).where(Vehicle.vin == vin))
    outbox.write(session, outbox.route_records(node, session, [(body, plate)], origin_region, peer.name))
    return "applied"


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
