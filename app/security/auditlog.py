"""The security audit log (GB/T 22239 8.1.4.3): append-only and hash-chained.

Each row carries the hash of the row before it, so an edit, a deletion or an insertion in the middle
breaks the chain at that row; the database refuses UPDATE/DELETE/TRUNCATE (migration 0002) and each
new head hash also goes to the application log, which hosts forward to the central log host, so a
truncated tail is visible against that copy. Writers serialise on an advisory lock held until commit:
audit rows are few and small, and an unbroken sequence is worth the wait.
"""

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from app.db.models import AuditEvent
from app.domain.clock import now

log = logging.getLogger("app.audit")

HashAlg = Literal["sha256", "sm3"]
GENESIS = "0" * 64
_LOCK_KEY = 0x7062_6F78_6175_6474  # "pboxaudt": one chain, one writer at a time

Outcome = Literal["success", "failure"]


@dataclass(frozen=True)
class Event:
    actor_kind: str
    actor_id: str
    action: str
    subject: str
    outcome: Outcome = "success"
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    client_ip: str | None = None


def digest(alg: str, data: bytes) -> str:
    if alg == "sm3":
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize().hex()
    if alg == "sha256":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unknown audit hash algorithm {alg!r}")


def row_hash(alg: str, seq: int, at: datetime, prev_hash: str, e: Event) -> str:
    canonical = json.dumps(
        [
            seq,
            at.astimezone(UTC).isoformat(),
            e.actor_kind,
            e.actor_id,
            e.action,
            e.subject,
            e.outcome,
            e.detail,
            e.request_id,
            e.client_ip,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return digest(alg, prev_hash.encode() + b"\n" + canonical.encode())


class AuditLog:
    def __init__(self, alg: HashAlg = "sha256") -> None:
        self.alg = alg

    def record(self, session: Session, e: Event) -> int:
        """Append one event in the caller's transaction; returns its sequence number."""
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        last = session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        at = now()
        h = row_hash(self.alg, seq, at, prev, e)
        session.execute(
            insert(AuditEvent).values(seq=seq, at=at, alg=self.alg, prev_hash=prev, hash=h, **e.__dict__)
        )
        log.info("audit event", extra={"audit_seq": seq, "audit_hash": h, "audit_action": e.action})
        return seq


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify_rows(rows: Iterable[AuditEvent]) -> ChainReport:
    """Walk the chain from the first row; stop at the first row that does not follow from the one before."""
    expected_seq, prev, checked = 1, GENESIS, 0
    for r in rows:
        e = Event(
            r.actor_kind,
            r.actor_id,
            r.action,
            r.subject,
            r.outcome,  # type: ignore[arg-type]
            r.detail,
            r.request_id,
            r.client_ip,
        )
        if r.seq != expected_seq:
            return ChainReport(checked, prev, expected_seq, f"第 {expected_seq} 条缺失（下一条为 {r.seq}）")
        if r.prev_hash != prev:
            return ChainReport(checked, prev, r.seq, "前序哈希不符：之前的记录被删除或改动")
        if row_hash(r.alg, r.seq, r.at, r.prev_hash, e) != r.hash:
            return ChainReport(checked, prev, r.seq, "本条内容与哈希不符：记录被改动")
        expected_seq, prev, checked = r.seq + 1, r.hash, checked + 1
    return ChainReport(checked, prev)


def verify(session: Session) -> ChainReport:
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    return verify_rows(rows)
