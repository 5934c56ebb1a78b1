"""Reconciliation: is everything a peer has sent here actually here?

The receiving node asks each peer for a summary of the record versions it has shipped here, per day
(of first upload, Beijing time) and origin region: a count and a digest. It compares them with the
versions it holds of that day and origin; where they differ it asks for the peer's list of keys,
and re-requests the keys it lacks, which the peer puts back into its outbox as new messages.

Digest: SHA-256 (hex) of the lines "<uscc>/<settlement_no>/<version>\\t<content digest>\\n", sorted
bytewise, each distinct line once.
"""

import logging
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import ExchangeReconcile
from app.db.session import Database
from app.domain.clock import today_in_china
from app.exchange.client import call
from app.node import ExchangeNode, Peer
from app.services import outbox

log = logging.getLogger("app.exchange.reconcile")

_DIGEST = """encode(sha256(convert_to(string_agg(k || E'\\t' || d || E'\\n', '' ORDER BY k COLLATE "C", d
             COLLATE "C"), 'UTF8')), 'hex')"""

# what this node has shipped to `peer` (behind its cursor), dead letters included so their gap shows
_SHIPPED = """SELECT DISTINCT o.msg_key AS k, o.digest AS d, o.origin_day AS day, o.origin_region AS origin
              FROM exchange_outbox o JOIN exchange_cursor c ON c.peer = o.peer
              WHERE o.peer = :peer AND o.kind = 'record.version' AND (o.xid, o.id) <= (c.xid, c.id)"""

# what this node holds of versions first uploaded elsewhere
_HELD = """SELECT DISTINCT e.uscc || '/' || v.settlement_no || '/' || v.version AS k, v.digest AS d,
                  (v.origin_at AT TIME ZONE 'Asia/Shanghai')::date AS day, v.origin_region AS origin
           FROM record_version v JOIN enterprise e ON e.id = v.enterprise_id
           WHERE v.origin_region IS NOT NULL"""

SUMMARY_PATH = "/api/exchange/v1/reconcile/summary"
KEYS_PATH = "/api/exchange/v1/reconcile/keys"
REREQUEST_PATH = "/api/exchange/v1/reconcile/rerequest"


def _summaries(session: Session, source: str, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            f"SELECT day, origin, count(*) AS n, {_DIGEST} AS digest FROM ({source}) t "  # noqa: S608 - fixed fragments
            f"WHERE {where} GROUP BY day, origin ORDER BY day, origin"
        ),
        params,
    )
    return [
        {"day": r.day.isoformat(), "origin_region": r.origin, "count": r.n, "digest": r.digest} for r in rows
    ]


def shipped_summary(session: Session, peer: str, days: list[date]) -> list[dict[str, Any]]:
    return _summaries(session, _SHIPPED, "day = ANY(:days)", {"peer": peer, "days": days})


def held_summary(session: Session, days: list[date], origins: list[str]) -> list[dict[str, Any]]:
    start, end = min(days), max(days) + timedelta(days=1)
    src = _HELD + " AND v.origin_at >= CAST(:start AS date) - interval '1 day' AND v.origin_at < :end"
    return _summaries(
        session,
        src,
        "day = ANY(:days) AND origin = ANY(:origins)",
        {"days": days, "origins": origins, "start": start, "end": end},
    )


def shipped_keys(session: Session, peer: str, day: date, origin: str) -> list[list[str]]:
    rows = session.execute(
        text(f"SELECT k, d FROM ({_SHIPPED}) t WHERE day = :day AND origin = :o ORDER BY k"),  # noqa: S608
        {"peer": peer, "day": day, "o": origin},
    )
    return [[r.k, r.d] for r in rows]


def held_keys(session: Session, day: date, origin: str) -> set[tuple[str, str]]:
    src = (
        _HELD + " AND v.origin_region = :o AND v.origin_at >= CAST(:day AS date) - interval '1 day'"
        " AND v.origin_at < CAST(:day AS date) + interval '2 days'"
    )
    rows = session.execute(text(f"SELECT k, d FROM ({src}) t WHERE day = :day"), {"day": day, "o": origin})  # noqa: S608
    return {(r.k, r.d) for r in rows}


def refused_keys(session: Session, peer: str, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = session.execute(
        text("SELECT DISTINCT msg_key FROM exchange_refusal WHERE sender = :p AND msg_key = ANY(:k)"),
        {"p": peer, "k": keys},
    )
    return {r[0] for r in rows}


def rerequest(session: Session, peer: str, keys: list[str]) -> dict[str, Any]:
    """The latest message of each key for `peer` goes into the outbox again, unless it is a dead letter
    (it would only be rejected again: the operator replays those once the cause is fixed)."""
    rows = session.execute(
        text("""SELECT DISTINCT ON (msg_key) msg_key, status, kind, body, digest, origin_region, origin_day
                FROM exchange_outbox WHERE peer = :p AND msg_key = ANY(:k) ORDER BY msg_key, id DESC"""),
        {"p": peer, "k": keys},
    ).all()
    again = [r for r in rows if r.status != "dead"]
    new = [
        outbox.rows_for(
            [peer],
            r.kind,
            r.body,
            msg_key=r.msg_key,
            digest=r.digest,
            origin_region=r.origin_region,
            origin_day=r.origin_day,
        )[0]
        for r in again
    ]
    outbox.write(session, new)
    return {
        "requeued": len(new),
        "dead": sorted(r.msg_key for r in rows if r.status == "dead"),
        "unknown": sorted(set(keys) - {r.msg_key for r in rows}),
    }


def window(days: int) -> list[date]:
    today = today_in_china()
    return [today - timedelta(days=i) for i in range(days)]


def reconcile_peer(
    node: ExchangeNode, db: Database, client: httpx.Client, peer: Peer
) -> list[dict[str, Any]]:
    """One comparison with `peer`; records and returns the state of each (day, origin) it reported."""
    days = window(node.config.reconcile_days)
    theirs = call(
        client, node, peer, SUMMARY_PATH, "reconcile.summary", {"days": [d.isoformat() for d in days]}
    )["days"]
    if not theirs:
        return []
    with db.transaction() as s:
        ours = {
            (x["day"], x["origin_region"]): x
            for x in held_summary(s, days, sorted({t["origin_region"] for t in theirs}))
        }
    state = []
    for t in theirs:
        o = ours.get((t["day"], t["origin_region"]), {"count": 0, "digest": ""})
        entry = {
            "peer": peer.name,
            "day": t["day"],
            "origin_region": t["origin_region"],
            "their_count": t["count"],
            "their_digest": t["digest"],
            "our_count": o["count"],
            "our_digest": o["digest"],
            "missing": 0,
            "rerequested": 0,
            "refused": 0,
            "status": "ok",
        }
        if o["digest"] != t["digest"]:
            day = date.fromisoformat(t["day"])
            keys = call(
                client,
                node,
                peer,
                KEYS_PATH,
                "reconcile.keys",
                {"day": t["day"], "origin_region": t["origin_region"]},
            )["keys"]
            with db.transaction() as s:
                held = held_keys(s, day, t["origin_region"])
                lacking = sorted({k for k, d in keys if (k, d) not in held})
                # refused here as outside the peer's authority: shown, and never asked for again
                no = refused_keys(s, peer.name, lacking)
            missing = [k for k in lacking if k not in no]
            entry["missing"], entry["refused"] = len(missing), len(lacking) - len(missing)
            entry["status"] = "gap" if missing else "refused" if entry["refused"] else "extra"
            if missing:
                answer = call(client, node, peer, REREQUEST_PATH, "reconcile.rerequest", {"keys": missing})
                entry["rerequested"] = int(answer.get("requeued", 0))
                log.warning(
                    "reconciliation found a gap",
                    extra={
                        "peer": peer.name,
                        "day": t["day"],
                        "origin": t["origin_region"],
                        "missing": len(missing),
                        "requeued": entry["rerequested"],
                    },
                )
        state.append(entry)
    with db.transaction() as s:
        stmt = pg_insert(ExchangeReconcile).values(
            [{**e, "day": date.fromisoformat(e["day"])} for e in state]
        )
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["peer", "day", "origin_region"],
                set_={
                    c: stmt.excluded[c]
                    for c in (
                        "their_count",
                        "their_digest",
                        "our_count",
                        "our_digest",
                        "missing",
                        "rerequested",
                        "refused",
                        "status",
                    )
                }
                | {"checked_at": text("now()")},
            )
        )
    return state


def reconcile_all(node: ExchangeNode, db: Database, client: httpx.Client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for peer in node.peers.values():
        try:
            out[peer.name] = {"ok": True, "days": reconcile_peer(node, db, client, peer)}
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("reconciliation failed", extra={"peer": peer.name, "error": repr(exc)[:200]})
            out[peer.name] = {"ok": False, "error": repr(exc)[:200]}
    return out


def state(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        text("""SELECT peer, day, origin_region, their_count, their_digest, our_count, our_digest, missing,
                       rerequested, refused, status, checked_at
                FROM exchange_reconcile ORDER BY peer, day DESC, origin_region""")
    )
    return [{**r._mapping, "day": r.day.isoformat()} for r in rows]
