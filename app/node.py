"""This node in the exchange: its name, role and region, its peers, and which records flow to whom.

Routes (DESIGN.md §3): city → province every record; province → ministry every record; province →
city the city's cars repaired elsewhere; ministry → province that province's cars repaired in other
provinces; statistics upward. As flows per peer:
- `records`: every record that did not come from that peer;
- `home_records`: records of cars whose home region lies in the peer's region, repaired outside it;
- `statistics`: this node's daily statistics.
A record is never sent back to the peer it came from, nor to the region it was uploaded in.
"""

from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.security.rbac import region_prefix
from app.security.signing import Signer, load_public
from app.settings import ExchangePeer, Flow, Settings

Role = Literal["ministry", "province", "city"]

DEFAULT_FLOWS: dict[tuple[str, str], list[Flow]] = {
    ("city", "province"): ["records", "statistics"],
    ("province", "ministry"): ["records", "statistics"],
    ("province", "city"): ["home_records"],
    ("ministry", "province"): ["home_records"],
}


def in_region(scope_role: str, scope: str, code: str | None) -> bool:
    """Whether `code` lies in the region of a node; the ministry's region is the whole country."""
    if code is None:
        return False
    return scope_role == "ministry" or code.startswith(region_prefix(scope))


@dataclass(frozen=True)
class Peer:
    name: str
    role: Role
    region_code: str
    url: str
    key: Ed25519PublicKey
    flows: frozenset[Flow]

    def holds(self, code: str | None) -> bool:
        return in_region(self.role, self.region_code, code)


@dataclass(frozen=True)
class RecordEvent:
    """What routing needs to know of one record version."""

    origin_region: str
    home_region: str | None
    source_peer: str | None  # None for an upload made at this node


class ExchangeNode:
    def __init__(self, settings: Settings, signer: Signer) -> None:
        ex = settings.exchange
        self.role: Role = settings.node_role
        self.region_code = settings.region_code
        self.name = ex.node_name or f"{self.role}-{self.region_code}"
        self.signer = signer
        self.config = ex
        self.peers: dict[str, Peer] = {p.name: self._peer(p) for p in ex.peers}

    def _peer(self, p: ExchangePeer) -> Peer:
        flows = p.flows if p.flows is not None else DEFAULT_FLOWS.get((self.role, p.role), [])
        return Peer(
            p.name,
            p.role,
            p.region_code,
            p.url.rstrip("/"),
            load_public(p.signing_public_key),
            frozenset(flows),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "ExchangeNode | None":
        ex = settings.exchange
        if not ex.enabled:
            return None
        if ex.signing_key_file is None:
            raise ValueError("exchange.signing_key_file must be set when the exchange is enabled")
        return cls(settings, Signer.from_file(ex.signing_key_file))

    def route(self, event: RecordEvent) -> list[str]:
        out = []
        for p in self.peers.values():
            if event.source_peer == p.name:
                continue
            home_elsewhere = p.holds(event.home_region) and not p.holds(event.origin_region)
            if "records" in p.flows or ("home_records" in p.flows and home_elsewhere):
                out.append(p.name)
        return sorted(out)

    def statistics_peers(self) -> list[str]:
        return sorted(p.name for p in self.peers.values() if "statistics" in p.flows)
