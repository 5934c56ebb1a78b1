"""Which records a peer may create, change or withdraw here: its authority (docs/exchange.md §4.1).

A signature proves who sent a message, not that the sender may speak for the record. Each record is
owned by the node it was first uploaded at (its origin, fixed for every version); the tree of nodes
(ministry ⊃ provinces ⊃ cities) decides who may carry it where:

- a peer *below* this node (a city to its province, a province to the ministry) speaks only for its
  own region: the record's origin and its enterprise lie in the peer's region;
- a peer *above* this node (the province to a city, the ministry to a province) brings only records
  uploaded outside this node's region: their origin lies outside it (what this node or a node below
  it uploaded never comes back down; the province speaks for every shop of the province, so a
  Nanjing shop's repair uploaded at the provincial system does reach Nanjing's own node);
- a peer *beside* this node (configured by hand, neither above nor below) speaks for its own region;
- whatever the relation, the enterprise lies in the region of the origin, and a record first
  uploaded at this node (or held here from another origin) is never changed by a peer.

The first three are checked on the message alone (`check_record`, `check_statistics`); the last
against the records held here (`held_conflicts`, in the transaction that applies the batch).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from app.db.models import Enterprise, RecordVersion, RepairRecord
from app.node import ExchangeNode, Peer, in_region

MINISTRY_REGION = "100000"  # the ministry's code in every origin (docs/exchange.md)
_RANK = {"ministry": 0, "province": 1, "city": 2}

Relation = Literal["above", "below", "beside"]

OUT_OF_SCOPE = "PEER_OUT_OF_SCOPE"
ORIGIN_HERE = "RECORD_ORIGIN_HERE"
ORIGIN_CONFLICT = "RECORD_ORIGIN_CONFLICT"
ENTERPRISE_CONFLICT = "ENTERPRISE_CONFLICT"
CODES = (OUT_OF_SCOPE, ORIGIN_HERE, ORIGIN_CONFLICT)


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str


def _holds(region: str, code: str) -> bool:
    """Whether `code` lies in the region of the node whose region code is `region`."""
    return in_region("ministry" if region == MINISTRY_REGION else "region", region, code)


def relation(node: ExchangeNode, peer: Peer) -> Relation:
    """Where `peer` stands from this node: above (holds this node's region), below, or beside."""
    if _RANK[peer.role] < _RANK[node.role] and peer.holds(node.region_code):
        return "above"
    if _RANK[peer.role] > _RANK[node.role] and in_region(node.role, node.region_code, peer.region_code):
        return "below"
    return "beside"


def check_record(node: ExchangeNode, peer: Peer, enterprise_region: str, origin: str) -> Refusal | None:
    """The message-only rules for one record version from `peer`; None when it is in its authority."""
    where = f"enterprise {enterprise_region}, origin {origin}, peer {peer.name} ({peer.region_code})"
    if origin == node.region_code:
        return Refusal(ORIGIN_HERE, f"origin is this node ({where})")
    if not _holds(origin, enterprise_region):
        return Refusal(OUT_OF_SCOPE, f"enterprise outside its origin's region ({where})")
    rel = relation(node, peer)
    if rel == "above":
        if _holds(node.region_code, origin):
            return Refusal(ORIGIN_HERE, f"origin inside this node's region, sent from above ({where})")
    elif not peer.holds(origin):
        return Refusal(OUT_OF_SCOPE, f"origin outside the peer's region ({where})")
    return None


def check_statistics(node: ExchangeNode, peer: Peer) -> Refusal | None:
    """Statistics flow upward only (their rows outside the sender's region are dropped on receipt:
    `outside`, so one misregistered shop does not cost the region its whole report)."""
    if relation(node, peer) != "below":
        return Refusal(OUT_OF_SCOPE, f"statistics from {peer.name}, which is not below this node")
    return None


def outside(peer: Peer, regions: Iterable[str]) -> Refusal | None:
    """The statistics rows of regions outside the sender's, which are not stored."""
    out = sorted({r for r in regions if not peer.holds(r)})
    if out:
        dropped = ",".join(out[:5])
        return Refusal(OUT_OF_SCOPE, f"statistics rows of regions outside {peer.name} dropped: {dropped}")
    return None


def held_conflicts(session: Session, wanted: dict[tuple[str, str], str]) -> dict[tuple[str, str], Refusal]:
    """Records held here that the messages (key (uscc, settlement_no) → origin) may not change: those
    with a version uploaded here, and those whose origin is another region than the message's."""
    if not wanted:
        return {}
    rows = session.execute(
        select(
            Enterprise.uscc,
            RepairRecord.settlement_no,
            func.bool_or(RecordVersion.source != "exchange"),
            func.array_agg(func.distinct(RecordVersion.origin_region)),
        )
        .join(Enterprise, Enterprise.id == RepairRecord.enterprise_id)
        .join(RecordVersion, RecordVersion.record_id == RepairRecord.id)
        .where(tuple_(Enterprise.uscc, RepairRecord.settlement_no).in_(sorted(wanted)))
        .group_by(Enterprise.uscc, RepairRecord.settlement_no)
    )
    out: dict[tuple[str, str], Refusal] = {}
    for uscc, no, local, origins in rows:
        key, held = (uscc, no), {o for o in origins or [] if o is not None}
        if local:
            out[key] = Refusal(ORIGIN_HERE, f"{uscc}/{no} was uploaded at this node")
        elif held != {wanted[key]}:
            have = ",".join(sorted(held))
            out[key] = Refusal(ORIGIN_CONFLICT, f"{uscc}/{no} is held from origin {have}, not {wanted[key]}")
    return out


def enterprise_conflicts(session: Session, regions: dict[str, str]) -> dict[str, Refusal]:
    """Enterprises known here (USCC → the region the message gives) that a peer's records may not be
    filed under: the message's region is checked against the peer's authority, so the enterprise
    held here must be that region's (else a peer could file records under any shop of any region by
    naming it with a region of its own), and must not be barred here (pending, refused, suspended:
    a suspended shop's records relayed from a node that has not yet heard of the suspension)."""
    if not regions:
        return {}
    rows = session.execute(
        select(Enterprise.uscc, Enterprise.region_code, Enterprise.status).where(
            Enterprise.uscc.in_(sorted(regions))
        )
    )
    out: dict[str, Refusal] = {}
    for uscc, region, status in rows:
        if region != regions[uscc]:
            detail = f"{uscc} is held here in region {region}, not {regions[uscc]}"
            out[uscc] = Refusal(ENTERPRISE_CONFLICT, detail)
        elif status != "active":
            out[uscc] = Refusal(ENTERPRISE_CONFLICT, f"{uscc} is {status} here")
    return out
