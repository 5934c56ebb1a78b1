"""The relay (in app-worker): ships each peer's outbox rows in order, in batches, behind its cursor.

Why (xid, id) and the snapshot's xmin: identity values are handed out before commit, so a row with a
smaller id can become visible after a larger one has shipped. Rows are therefore taken in order of
their writing transaction's id, and only from transactions older than every transaction still
running; any row that commits later has a larger xid than the cursor, so the cursor never passes it.

A peer that cannot be reached, or answers with an error, gets the same batch again after a delay
that doubles per failure (with jitter, capped); a batch that timed out is halved first, so a slow
peer still makes progress (and doubles back on success). A message the peer rejects is
dead-lettered (the admin API lists and replays them) and the cursor moves on.
"""

import logging
import random
import zlib
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.session import Database
from app.domain.clock import now
from app.exchange.client import envelope
from app.node import ExchangeNode, Peer

log = logging.getLogger("app.exchange.relay")
MESSAGES_PATH = "/api/exchange/v1/messages"

_PENDING = text(
    """SELECT o.id, o.xid::text AS xid, o.message_id::text AS message_id, o.kind, o.body, o.created_at
       FROM exchange_outbox o
       WHERE o.peer = :peer AND (o.xid, o.id) > (CAST(:cx AS xid8), :cid) AND o.status = 'pending'
         AND o.xid < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY o.xid, o.id LIMIT :n"""
)


def ensure_cursors(session: Session, peers: list[str]) -> None:
    for p in peers:
        session.execute(
            text("INSERT INTO exchange_cursor (peer) VALUES (:p) ON CONFLICT DO NOTHING"), {"p": p}
        )


def backoff(failures: int, base: float, cap: float) -> float:
    """Exponential with 'equal jitter': half the delay fixed, half random, so peers do not retry in step."""
    delay = min(cap, base * 2 ** max(failures - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - spreading retries, not a secret


@dataclass
class ShipResult:
    shipped: int = 0
    rejected: int = 0
    failed: bool = False
    waiting: bool = False  # in backoff; nothing tried


class Relay:
    def __init__(self, node: ExchangeNode, db: Database, client: httpx.Client) -> None:
        self.node, self.db, self.client = node, db, client
        self.batch = {p: node.config.batch_size for p in node.peers}
        with db.transaction() as s:
            ensure_cursors(s, list(node.peers))

    def lock_key(self) -> int:
        """One relay per node at a time: the advisory lock its worker holds (see app.worker)."""
        return zlib.crc32(f"pbox-relay:{self.node.name}".encode())

    def ship(self, peer: Peer) -> ShipResult:
        with self.db.transaction() as s:
            cur = s.execute(
                text(
                    "SELECT xid::text AS xid, id, failures, next_attempt_at"
                    " FROM exchange_cursor WHERE peer = :p"
                ),
                {"p": peer.name},
            ).one()
            if cur.next_attempt_at is not None and cur.next_attempt_at > now():
                return ShipResult(waiting=True)
            rows = s.execute(
                _PENDING, {"peer": peer.name, "cx": cur.xid, "cid": cur.id, "n": self.batch[peer.name]}
            ).all()
        if not rows:
            return ShipResult()
        messages = [
            envelope(self.node, peer, r.kind, r.body, r.message_id, r.created_at.isoformat()) for r in rows
        ]
        try:
            r = self.client.post(f"{peer.url}{MESSAGES_PATH}", json={"messages": messages})
            r.raise_for_status()
            results = {x["id"]: x for x in r.json()["results"]}
            if set(results) != {m["id"] for m in messages}:
                raise ValueError("the answer does not list every message sent")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, httpx.TimeoutException):
                self.batch[peer.name] = max(1, len(rows) // 2)
            self._failed(peer, cur.failures + 1, exc)
            return ShipResult(failed=True)
        self.batch[peer.name] = min(self.node.config.batch_size, self.batch[peer.name] * 2)
        rejected = [x for x in results.values() if x["status"] == "rejected"]
        last = rows[-1]
        with self.db.transaction() as s:
            for x in rejected:
                s.execute(
                    text("""UPDATE exchange_outbox SET status = 'dead', dead_at = now(), error_code = :c
                            WHERE message_id = CAST(:m AS uuid)"""),
                    {"c": str(x.get("code", "REJECTED"))[:40], "m": x["id"]},
                )
            s.execute(
                text("""UPDATE exchange_cursor SET xid = CAST(:x AS xid8), id = :i, shipped_at = now(),
                        failures = 0, next_attempt_at = NULL, last_error = NULL WHERE peer = :p"""),
                {"x": last.xid, "i": last.id, "p": peer.name},
            )
        if rejected:
            log.warning(
                "peer rejected messages",
                extra={
                    "peer": peer.name,
                    "rejected": len(rejected),
                    "codes": sorted({x.get("code") for x in rejected}),
                },
            )
        return ShipResult(shipped=len(rows), rejected=len(rejected))

    def _failed(self, peer: Peer, failures: int, exc: Exception) -> None:
        cfg = self.node.config
        delay = backoff(failures, cfg.backoff_base_seconds, cfg.backoff_max_seconds)
        with self.db.transaction() as s:
            s.execute(
                text("""UPDATE exchange_cursor SET failures = :f, next_attempt_at = :t, last_error = :e
                        WHERE peer = :p"""),
                {"f": failures, "t": now() + timedelta(seconds=delay), "e": repr(exc)[:500], "p": peer.name},
            )
        log.warning(
            "shipping failed",
            extra={
                "peer": peer.name,
                "failures": failures,
                "retry_in_s": round(delay, 2),
                "error": repr(exc)[:200],
            },
        )

    def run_once(self) -> dict[str, ShipResult]:
        """Every peer until its backlog is empty (or it fails); returns the last result per peer."""
        out: dict[str, ShipResult] = {}
        for peer in self.node.peers.values():
            total = ShipResult()
            while True:
                res = self.ship(peer)
                total.shipped += res.shipped
                total.rejected += res.rejected
                total.failed, total.waiting = res.failed, res.waiting
                if res.shipped == 0 or res.failed:
                    break
            out[peer.name] = total
        return out

    def next_wakeup(self) -> float:
        """Seconds until the earliest peer in backoff may be tried again (at most the poll interval)."""
        poll = self.node.config.poll_seconds
        with self.db.transaction() as s:
            soonest = s.scalar(
                text("SELECT min(next_attempt_at) FROM exchange_cursor WHERE next_attempt_at > now()")
            )
        if soonest is None:
            return poll
        return max(0.0, min(poll, (soonest - now()).total_seconds()))
