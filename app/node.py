"""This node in the exchange: its name, role and region, its peers, and which records flow to whom.

Routes (DESIGN.md §3): city → province every record; province → ministry every record; province →
city the city's cars repaired elsewhere; ministry → province that province's cars repaired in other
provinces; statistics upward. As flows per peer:
- `records`: every record that did not come from that peer;
- `home_records`: records of cars whose home region lies in the peer's region, repaired outside it;
- `statistics`: this node's daily statistics.
A record is never sent back to the peer it came from, nor to the region it was uploaded in.
"""

import logging
from dataclasses import dataclass
from typing import Literal

from app.security.keys import KeyProvider, key_provider
from app.security.rbac import region_prefix
from app.security.signatures import PublicKey
from app.security.signing import SignaturePolicy, Signer, load_public
from app.settings import ExchangePeer, Flow, Settings

Role = Literal["ministry", "province", "city"]
log = logging.getLogger("app.exchange")

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
    key: PublicKey  # its algorithm is the one the peer announced
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
        self.policy = SignaturePolicy.from_settings(ex, settings.crypto_suite)
        if signer.alg not in self.policy.allowed:  # a setting that contradicts itself: refuse to start
            raise ValueError(f"this node's own signing key cannot be used: {self.policy.refusal(signer.alg)}")
        if why := self.policy.refusal(signer.alg):  # the window ended: peers with the same date refuse us
            log.warning("this node still signs with a key its peers refuse", extra={"reason": why})
        self.peers: dict[str, Peer] = {p.name: self._peer(p) for p in ex.peers}
        for peer in self.peers.values():
            if why := self.policy.refusal(peer.key.alg):  # its messages are refused, others still flow
                log.warning("peer's signatures not accepted", extra={"peer": peer.name, "reason": why})
        if settings.crypto_suite == "sm" and "ed25519" in self.policy.allowed and not ex.ed25519_refused_from:
            log.warning("national suite: Ed25519 accepted with no end (exchange.ed25519_refused_from unset)")

    def _peer(self, p: ExchangePeer) -> Peer:
        flows = p.flows if p.flows is not None else DEFAULT_FLOWS.get((self.role, p.role), [])
        return Peer(
            p.name,
            p.role,
            p.region_code,
            p.url.rstrip("/"),
            load_public(p.signing_public_key, p.signing_algorithm),
            frozenset(flows),
        )

    @classmethod
    def from_settings(cls, settings: Settings, keys: KeyProvider | None = None) -> "ExchangeNode | None":
        if not settings.exchange.enabled:
            return None
        return cls(settings, Signer((keys or key_provider(settings)).exchange_signer()))

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
