"""The security audit log (GB/T 22239 8.1.4.3): append-only, chained with a key, anchored off the host.

Each row carries the hash of the row before it, so an edit, a deletion or an insertion in the middle
breaks the chain at that row; the database refuses UPDATE/DELETE/TRUNCATE (migration 0002), and the
runtime role may only append at the head, through audit.append_event (migration 0011), which checks
that the new row follows the head. Writers serialise on an advisory lock held until commit: audit
rows are few and small, and an unbroken sequence is worth the wait.

A plain hash chain can be recomputed by anyone who can write the table (the runtime role could add
rows, the owner role could switch the triggers off and re-hash). So rows are MACs under `audit_key`
(HMAC-SHA256, or HMAC-SM3 with the national suite), a key kept outside the database: without it no
database role can write a row that verifies. Rows written before the key was configured keep their
plain hash; the keyed part starts at a boundary row (action `audit.chain_keyed`), and after it a
plain-hash row is refused by the database and reported by the verifier ("once keyed, always keyed");
with the key, a chain whose head is not keyed is reported too (a rewrite back to plain hashes).

Whoever holds the key and the owner role could still rewrite and re-MAC the chain, so app-worker
regularly writes the head (seq, hash, time) to syslog under the tag `pbox-audit-anchor`, which the
hosts forward to the site's central log host (roles/hardening), and the verifier checks the chain
against every anchor: a row rewritten, or a tail deleted, after an anchor was taken is found.
"""

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db.models import AuditEvent
from app.domain.clock import now

log = logging.getLogger("app.audit")

HashAlg = Literal["sha256", "sm3"]
GENESIS = "0" * 64
# the keyed algorithms, by the hash under the HMAC
KEYED = {"hmac-sha256": "sha256", "hmac-sm3": "sm3"}
BOUNDARY_ACTION = "audit.chain_keyed"
ANCHOR_TAG = "pbox-audit-anchor"
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


def mac(alg: str, key: bytes, data: bytes) -> str:
    if alg == "sm3":
        h = crypto_hmac.HMAC(key, hashes.SM3())
        h.update(data)
        return h.finalize().hex()
    if alg == "sha256":
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    raise ValueError(f"unknown audit hash algorithm {alg!r}")


class MissingAuditKey(Exception):
    """The chain is keyed from `seq` on, and no key was given to verify it."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"the audit chain is keyed from seq {seq}: the audit key is needed to verify it")
        self.seq = seq


def key_from_secret_file(text: str) -> bytes:
    """The key from a file: 64+ hex digits as they are, else the controller's generated secret
    (roles/app), whose SHA-256 is the key the node's app.env carries."""
    value = text.strip()
    if re.fullmatch(r"(?:[0-9a-fA-F]{2}){32,}", value):
        return bytes.fromhex(value)
    if not value:
        raise ValueError("the audit key file is empty")
    return hashlib.sha256(value.encode()).digest()


def parse_key(value: str | None) -> bytes | None:
    """The audit key as configured: hex, at least 32 bytes; empty means none."""
    if not value or not value.strip():
        return None
    key = bytes.fromhex(value.strip())
    if len(key) < 32:
        raise ValueError("the audit key must be at least 32 bytes (64 hex digits)")
    return key


def row_hash(alg: str, seq: int, at: datetime, prev_hash: str, e: Event, key: bytes | None = None) -> str:
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
    data = prev_hash.encode() + b"\n" + canonical.encode()
    if alg in KEYED:
        if key is None:
            raise ValueError("a keyed audit row needs the audit key")
        return mac(KEYED[alg], key, data)
    return digest(alg, data)


_APPEND = text(
    "SELECT audit.append_event(:seq, :at, :actor_kind, :actor_id, :action, :subject, :outcome,"
    " CAST(:detail AS jsonb), :request_id, :client_ip, :alg, :prev_hash, :hash)"
)


class AuditLog:
    def __init__(self, alg: HashAlg = "sha256", key: bytes | None = None) -> None:
        self.alg = alg
        self.key = key
        # the algorithm written into new rows: keyed when there is a key
        self.row_alg = f"hmac-{alg}" if key is not None else alg

    def record(self, session: Session, e: Event) -> int:
        """Append one event in the caller's transaction; returns its sequence number."""
        seq, prev = self._head(session)
        self._append(session, seq, prev, e)
        return seq

    def ensure_keyed(self, session: Session) -> None:
        """Write the boundary row now if the chain is not keyed yet (app-worker, at start)."""
        if self.key is not None:
            self._head(session)

    def _head(self, session: Session) -> tuple[int, str]:
        """Lock the chain; the next seq and the head's hash, after marking the keyed chain's start if
        this writer has the key and the head is not keyed yet."""
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        last = session.execute(
            select(AuditEvent.seq, AuditEvent.hash, AuditEvent.alg).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        if self.key is not None and (last is None or last[2] not in KEYED):
            mark = Event("system", "app", BOUNDARY_ACTION, "audit.event", detail={"alg": self.row_alg})
            prev = self._append(session, seq, prev, mark)
            seq += 1
        return seq, prev

    def _append(self, session: Session, seq: int, prev: str, e: Event) -> str:
        at = now()
        h = row_hash(self.row_alg, seq, at, prev, e, self.key)
        values = {**e.__dict__, "detail": json.dumps(e.detail, ensure_ascii=False)}
        session.execute(_APPEND, {"seq": seq, "at": at, "alg": self.row_alg, "prev_hash": prev, "hash": h,
                                  **values})
        log.info("audit event", extra={"audit_seq": seq, "audit_hash": h, "audit_action": e.action})
        return h

    def verify(self, session: Session) -> "ChainReport":
        return verify(session, self.key)


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify_rows(rows: Iterable[AuditEvent], key: bytes | None = None) -> ChainReport:
    """Walk the chain from the first row; stop at the first row that does not follow from the one before.

    With a key, keyed rows are checked against it and the head must be keyed; without one, a keyed
    row raises MissingAuditKey (its MAC cannot be checked, and "unverified" must not read as "intact")."""
    expected_seq, prev, checked, keyed_from = 1, GENESIS, 0, None
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
        if r.alg in KEYED:
            if key is None:
                raise MissingAuditKey(r.seq)
            keyed_from = keyed_from or r.seq
        elif keyed_from is not None:
            reason = f"第 {keyed_from} 条起为带密钥的链，本条却无密钥：伪造或改写"
            return ChainReport(checked, prev, r.seq, reason)
        try:
            expected = row_hash(r.alg, r.seq, r.at, r.prev_hash, e, key)
        except ValueError:
            return ChainReport(checked, prev, r.seq, f"未知的哈希算法 {r.alg!r}")
        if not hmac.compare_digest(expected, r.hash):
            return ChainReport(checked, prev, r.seq, "本条内容与哈希不符：记录被改动或伪造")
        expected_seq, prev, checked = r.seq + 1, r.hash, checked + 1
    if key is not None and checked and keyed_from is None:
        return ChainReport(checked, prev, expected_seq - 1,
                           "已配置审计密钥，但链中没有带密钥的记录：链被改写为无密钥哈希（或尚未写入密钥链起点）")
    return ChainReport(checked, prev)


def verify(session: Session, key: bytes | None = None) -> ChainReport:
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    return verify_rows(rows, key)


def head(session: Session) -> tuple[int, str, datetime] | None:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash, AuditEvent.at).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (row[0], row[1], row[2]) if row else None


# --- Anchors: the chain head, written off the database host -----------------------------------------

_ANCHOR = re.compile(r"\bnode=(?P<node>\S+) seq=(?P<seq>\d+) hash=(?P<hash>[0-9a-f]{64})\b")


@dataclass(frozen=True)
class Anchor:
    node: str
    seq: int
    hash: str


def anchor_message(node: str, seq: int, hash_: str, at: datetime) -> str:
    """The text of one anchor (the syslog tag ANCHOR_TAG is added by the sender)."""
    return f"node={node} seq={seq} hash={hash_} at={at.astimezone(UTC).isoformat()}"


def parse_anchors(lines: Iterable[str], node: str | None = None) -> list[Anchor]:
    """Anchors from the log host's file (syslog lines: time, host, tag, message); other lines skipped."""
    out = []
    for line in lines:
        if ANCHOR_TAG not in line or not (m := _ANCHOR.search(line)):
            continue
        if node is None or m["node"] == node:
            out.append(Anchor(m["node"], int(m["seq"]), m["hash"]))
    return out


@dataclass(frozen=True)
class AnchorReport:
    checked: int
    mismatches: list[tuple[int, str]]

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not self.mismatches


def check_anchors(session: Session, anchors: Iterable[Anchor]) -> AnchorReport:
    """Every anchor must name a row that still exists with the same hash."""
    by_seq: dict[int, set[str]] = {}
    for a in anchors:
        by_seq.setdefault(a.seq, set()).add(a.hash)
    mismatches = []
    for seq in sorted(by_seq):
        stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
        for h in sorted(by_seq[seq]):
            if stored is None:
                mismatches.append((seq, f"锚点记录的第 {seq} 条在库中不存在：记录被删除"))
            elif not hmac.compare_digest(stored, h):
                mismatches.append((seq, f"第 {seq} 条与锚点（{h[:16]}…）不符：锚定后被改写"))
    return AnchorReport(sum(len(v) for v in by_seq.values()), mismatches)


@dataclass(frozen=True)
class Verification:
    chain: ChainReport
    anchors: AnchorReport | None = None
    anchor_nodes: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.anchors is None or self.anchors.ok)


def verify_with_anchors(
    session: Session, key: bytes | None, anchor_lines: Iterable[str] | None = None, node: str | None = None
) -> Verification:
    """The chain (with the key) and, when the log host's anchor lines are given, every anchor of
    `node` (all anchors when None; several nodes in them without a choice is an error)."""
    chain = verify(session, key)
    if anchor_lines is None:
        return Verification(chain)
    anchors = parse_anchors(anchor_lines, node)
    nodes = frozenset(a.node for a in anchors)
    if node is None and len(nodes) > 1:
        raise ValueError(f"the anchors are of several nodes ({', '.join(sorted(nodes))}): name one")
    return Verification(chain, check_anchors(session, anchors), nodes)
