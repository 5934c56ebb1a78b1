"""Writing messages into the outbox, in the caller's transaction, one row per peer they flow to.

Record versions are routed when written (app.node), so a peer's rows are exactly what this
node owes it: the relay ships them and reconciliation counts them.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Enterprise, ExchangeOutbox, ExchangeVinHome, Vehicle
from app.domain.clock import CHINA
from app.domain.reference import home_region
from app.node import ExchangeNode, RecordEvent
from app.services.records import NewVersion

RECORD = "record.version"
STATISTICS = "statistics.daily"
NOTIFY_CHANNEL = "pbox_exchange"

ENTERPRISE_FIELDS = ("uscc", "name", "region_code", "licence_no", "category", "business_scope", "address")


def record_key(uscc: str, settlement_no: str, version: int) -> str:
    return f"{uscc}/{settlement_no}/{version}"


def record_body(
    enterprise: dict[str, Any], row: dict[str, Any], content: dict[str, Any] | None, origin: dict[str, Any]
) -> dict[str, Any]:
    """The body of a record.version message (docs/exchange.md): hop-independent, so forwarded as is."""
    settle = row.get("settle_date")
    return {
        "origin": origin,
        "enterprise": enterprise,
        "record": {
            "settlement_no": row["settlement_no"],
            "version": row["version"],
            "kind": row["kind"],
            "digest": row["digest"],
            "vin": row["vin"],
            "settle_date": settle.isoformat() if settle else None,
            "content": content,
            "withdraw_reason": row.get("withdraw_reason"),
        },
    }


def homes(session: Session, cars: dict[str, tuple[str | None, str]]) -> dict[str, str | None]:
    """The home region of each car (VIN → plate, origin region): from its plate, else the region that
    first reported its VIN here."""
    session.execute(
        pg_insert(ExchangeVinHome)
        .values([{"vin": v, "region_code": cars[v][1]} for v in sorted(cars)])
        .on_conflict_do_nothing(index_elements=["vin"])
    )
    out = {vin: home_region(plate) for vin, (plate, _) in cars.items()}
    unplated = sorted(v for v, h in out.items() if h is None)
    if unplated:
        found = session.execute(
            select(ExchangeVinHome.vin, ExchangeVinHome.region_code).where(ExchangeVinHome.vin.in_(unplated))
        )
        out |= {vin: region for vin, region in found}
    return out


def rows_for(
    peers: list[str],
    kind: str,
    body: dict[str, Any],
    *,
    msg_key: str | None = None,
    digest: str | None = None,
    origin_region: str | None = None,
    origin_day: Any = None,
) -> list[dict[str, Any]]:
    rows = [
        {
            "peer": p,
            "message_id": str(uuid.uuid4()),
            "kind": kind,
            "body": body,
            "msg_key": msg_key,
            "digest": digest,
            "origin_region": origin_region,
            "origin_day": origin_day,
        }
        for p in peers
    ]
    return rows


def write(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    session.execute(insert(ExchangeOutbox), rows)
    # delivered at commit: wakes the relay at once instead of at its next poll
    session.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


def route_records(
    node: ExchangeNode,
    session: Session,
    items: list[tuple[dict[str, Any], str | None]],
    source_peer: str | None,
) -> list[dict[str, Any]]:
    """Outbox rows for record.version bodies (with the vehicle's plate beside each), routed by home."""
    if not items:
        return []
    home = homes(session, {b["record"]["vin"]: (plate, b["origin"]["region_code"]) for b, plate in items})
    rows: list[dict[str, Any]] = []
    for body, _ in items:
        rec = body["record"]
        origin_region = body["origin"]["region_code"]
        peers = node.route(RecordEvent(origin_region, home[rec["vin"]], source_peer))
        at = datetime.fromisoformat(body["origin"]["at"])
        rows += rows_for(
            peers,
            RECORD,
            body,
            msg_key=record_key(body["enterprise"]["uscc"], rec["settlement_no"], rec["version"]),
            digest=rec["digest"],
            origin_region=origin_region,
            origin_day=at.astimezone(CHINA).date(),
        )
    return rows


def sink_for(node: ExchangeNode | None) -> Callable[[Session, list[NewVersion]], None] | None:
    """The outbox sink for app.services.records, or None when this node exchanges with nobody."""
    return None if node is None else partial(local_versions, node)


def local_versions(node: ExchangeNode, session: Session, versions: list[NewVersion]) -> None:
    """The sink of app.services.records: versions uploaded at this node, into the outbox."""
    if not versions or not node.peers:
        return
    ent_ids = sorted({v.row["enterprise_id"] for v in versions})
    ents = {
        e.id: {f: getattr(e, f) for f in ENTERPRISE_FIELDS}
        for e in session.scalars(select(Enterprise).where(Enterprise.id.in_(ent_ids)))
    }
    items = []
    for v in versions:
        row = v.row
        origin = {"region_code": node.region_code, "node": node.name, "at": row["received_at"].isoformat()}
        content = v.record.model_dump(mode="json") if v.record is not None else None
        if v.record is not None:
            plate = v.record.vehicle.plate_no
        else:
            plate = session.scalar(select(Vehicle.plate_no).where(Vehicle.vin == row["vin"]))
        items.append((record_body(ents[row["enterprise_id"]], row, content, origin), plate))
    write(session, route_records(node, session, items, None))
