"""Statistics reported upward on a schedule: per day and enterprise region, the repair records of
this node's jurisdiction (its own uploads and those of the nodes below it)."""

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.clock import now, today_in_china
from app.node import ExchangeNode
from app.security.rbac import region_prefix
from app.services import outbox

_DAILY = text(
    """SELECT (coalesce(v.origin_at, v.received_at) AT TIME ZONE 'Asia/Shanghai')::date AS day,
              e.region_code, count(*) FILTER (WHERE v.kind = 'upload') AS records,
              count(*) FILTER (WHERE v.kind = 'withdrawal') AS withdrawals,
              count(DISTINCT v.enterprise_id) AS enterprises, count(DISTINCT v.vin) AS vehicles
       FROM record_version v JOIN enterprise e ON e.id = v.enterprise_id
       WHERE coalesce(v.origin_at, v.received_at) >= CAST(:since AS date) - interval '1 day'
         AND (v.origin_region IS NULL OR v.origin_region LIKE :prefix)
       GROUP BY 1, 2"""
)


def daily(session: Session, node: ExchangeNode, days: int) -> dict[str, Any]:
    since = today_in_china() - timedelta(days=days - 1)
    prefix = "%" if node.role == "ministry" else region_prefix(node.region_code) + "%"
    rows = [r for r in session.execute(_DAILY, {"since": since, "prefix": prefix}) if r.day >= since]
    return {
        "generated_at": now().isoformat(),
        "days": [
            {
                "day": r.day.isoformat(),
                "region_code": r.region_code,
                "records": r.records,
                "detail": {
                    "withdrawals": r.withdrawals,
                    "enterprises": r.enterprises,
                    "vehicles": r.vehicles,
                },
            }
            for r in rows
        ],
    }


def report(session: Session, node: ExchangeNode) -> int:
    """Today's report into the outbox for every peer that receives statistics; returns how many."""
    peers = node.statistics_peers()
    if not peers:
        return 0
    outbox.write(
        session, outbox.rows_for(peers, outbox.STATISTICS, daily(session, node, node.config.statistics_days))
    )
    return len(peers)
