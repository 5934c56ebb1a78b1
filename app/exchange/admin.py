"""What an operator sees and does: per-peer backlog and cursor, dead letters, and replaying them;
the messages this node refused from each peer (outside its authority)."""

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.node import ExchangeNode
from app.services import outbox

_STATUS = text(
    """SELECT c.peer, c.xid::text AS cursor_xid, c.id AS cursor_id, c.shipped_at, c.failures,
              c.next_attempt_at, c.last_error,
              (SELECT count(*) FROM exchange_outbox o WHERE o.peer = c.peer AND o.status = 'pending'
                  AND (o.xid, o.id) > (c.xid, c.id)) AS backlog,
              (SELECT min(o.created_at) FROM exchange_outbox o WHERE o.peer = c.peer AND o.status = 'pending'
                  AND (o.xid, o.id) > (c.xid, c.id)) AS oldest_pending_at,
              (SELECT count(*) FROM exchange_outbox o WHERE o.peer = c.peer AND o.status = 'dead')
                  AS dead_letters,
              (SELECT count(*) FROM exchange_refusal f WHERE f.sender = c.peer) AS refused,
              (SELECT max(f.received_at) FROM exchange_refusal f WHERE f.sender = c.peer) AS last_refused_at
       FROM exchange_cursor c ORDER BY c.peer"""
)


def peer_status(session: Session) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(_STATUS)]


def dead_letters(session: Session, peer: str | None, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.execute(
        text("""SELECT message_id::text AS message_id, peer, kind, msg_key, error_code, created_at, dead_at
                FROM exchange_outbox WHERE status = 'dead' AND (CAST(:p AS text) IS NULL OR peer = :p)
                ORDER BY id LIMIT :n"""),
        {"p": peer, "n": limit},
    )
    return [dict(r._mapping) for r in rows]


def refusals(session: Session, peer: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Messages received from `peer` (or any) and refused as outside its authority, newest first."""
    rows = session.execute(
        text("""SELECT message_id::text AS message_id, sender AS peer, kind, msg_key, code, detail,
                       enterprise_region, origin_region, origin_day, received_at
                FROM exchange_refusal WHERE CAST(:p AS text) IS NULL OR sender = :p
                ORDER BY id DESC LIMIT :n"""),
        {"p": peer, "n": limit},
    )
    return [dict(r._mapping) for r in rows]


def replay(session: Session, peer: str | None, message_ids: list[str] | None) -> list[str]:
    """Dead letters back into the outbox as new messages (new ids, same bodies), at the end of the peer's
    queue; the dead rows are kept, marked replayed, pointing to their replacement."""
    dead = session.execute(
        text("""SELECT id, peer, kind, body, msg_key, digest, origin_region, origin_day FROM exchange_outbox
                WHERE status = 'dead' AND (CAST(:p AS text) IS NULL OR peer = :p)
                  AND (CAST(:ids AS uuid[]) IS NULL OR message_id = ANY(CAST(:ids AS uuid[])))
                ORDER BY id FOR UPDATE"""),
        {"p": peer, "ids": message_ids},
    ).all()
    made = []
    for d in dead:
        new_id = str(uuid.uuid4())
        row = {
            "peer": d.peer,
            "message_id": new_id,
            "kind": d.kind,
            "body": d.body,
            "msg_key": d.msg_key,
            "digest": d.digest,
            "origin_region": d.origin_region,
            "origin_day": d.origin_day,
        }
        outbox.write(session, [row])
        session.execute(
            text(
                "UPDATE exchange_outbox SET status = 'replayed', replayed_as = CAST(:n AS uuid) WHERE id = :i"
            ),
            {"n": new_id, "i": d.id},
        )
        made.append(new_id)
    return made


def purge(session: Session, days: int) -> dict[str, int]:
    """Forget what is old and settled: outbox rows the peer acknowledged (dead letters stay until
    replayed), inbox ids (a late duplicate is still caught by its record version)."""
    shipped = session.execute(
        text("""DELETE FROM exchange_outbox o USING exchange_cursor c
                WHERE c.peer = o.peer AND (o.xid, o.id) <= (c.xid, c.id) AND o.status <> 'dead'
                  AND o.created_at < now() - make_interval(days => :d)"""),
        {"d": days},
    )
    seen = session.execute(
        text("DELETE FROM exchange_inbox WHERE received_at < now() - make_interval(days => :d)"), {"d": days}
    )
    refused = session.execute(
        text("DELETE FROM exchange_refusal WHERE received_at < now() - make_interval(days => :d)"),
        {"d": days},
    )
    return {
        "outbox": shipped.rowcount,  # type: ignore[attr-defined]
        "inbox": seen.rowcount,  # type: ignore[attr-defined]
        "refusal": refused.rowcount,  # type: ignore[attr-defined]
    }


def configured(node: ExchangeNode | None) -> dict[str, Any]:
    if node is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "node": node.name,
        "role": node.role,
        "region_code": node.region_code,
        "peers": [
            {
                "name": p.name,
                "role": p.role,
                "region_code": p.region_code,
                "url": p.url,
                "flows": sorted(p.flows),
            }
            for p in node.peers.values()
        ],
    }
