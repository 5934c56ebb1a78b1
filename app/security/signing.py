"""Message signatures: Ed25519 or SM2-with-SM3 over the canonical JSON of the message without its `sig`.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8 without escaping, no floating-point
numbers anywhere (amounts travel as decimal strings) — so any JSON library re-serializes a received
message to the very bytes that were signed.

A node signs with the one key its key provider gives (a file, or a PKCS#11 module); `sig.alg` names
the algorithm. A receiver verifies with the key it has registered for the sender, which fixes the
algorithm: a message whose `sig.alg` is not that one is refused, and so is every message of a peer
whose algorithm this node does not accept (`SignaturePolicy`: the national suite takes SM2, and
Ed25519 only until the migration window ends).
"""

import base64
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from app.domain.clock import CHINA, now
from app.security.signatures import (
    ALGORITHMS,
    Algorithm,
    PublicKey,
    load_private_pem,
    load_public_pem,
    new_private_pem,
)
from app.security.signatures import Signer as KeySigner
from app.settings import ExchangeSettings

__all__ = ["ALGORITHMS", "SignaturePolicy", "Signer", "load_public", "new_private_pem", "verify"]

_DOMAIN = b"pbox-exchange-v1\n"  # signatures made here mean nothing to any other protocol

ALG_NOT_ALLOWED = "SIGNATURE_ALG_NOT_ALLOWED"
ALG_MISMATCH = "SIGNATURE_ALG_MISMATCH"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bytes(message: dict[str, Any]) -> bytes:
    return _DOMAIN + canonical({k: v for k, v in message.items() if k != "sig"})


class Signer:
    """Signs exchange messages with a key from the key provider (app.security.keys)."""

    def __init__(self, key: KeySigner) -> None:
        self._key = key
        self.alg: Algorithm = key.alg

    @classmethod
    def from_file(cls, path: Path) -> "Signer":
        try:
            return cls(load_private_pem(path.read_bytes()))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def public_pem(self) -> str:
        return self._key.public_pem()

    def sign(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message with its `sig` member set."""
        value = self._key.sign(signed_bytes(message))
        return {**message, "sig": {"alg": self.alg, "value": base64.b64encode(value).decode()}}


def load_public(pem: str, announced: str = "") -> PublicKey:
    """A peer's registered key; `announced` (its configured algorithm), when given, must be the key's."""
    key = load_public_pem(pem)
    if announced and announced != key.alg:
        raise ValueError(f"the key is {key.alg}, the peer is registered as signing with {announced}")
    return key


def verify(key: PublicKey, message: dict[str, Any]) -> bool:
    """Whether `message` carries a valid signature by `key`, made with the key's algorithm."""
    sig = message.get("sig")
    if not isinstance(sig, dict) or sig.get("alg") != key.alg or not isinstance(sig.get("value"), str):
        return False
    try:
        value = base64.b64decode(sig["value"], validate=True)
    except ValueError:
        return False
    return key.verify(value, signed_bytes(message))


@dataclass(frozen=True)
class SignaturePolicy:
    """Which signature algorithms this node accepts from its peers, and until when Ed25519."""

    allowed: frozenset[str]
    ed25519_refused_from: date | None

    @classmethod
    def from_settings(cls, ex: ExchangeSettings, suite: str) -> "SignaturePolicy":
        default = ("sm2", "ed25519") if suite == "sm" else ("ed25519", "sm2")
        allowed = frozenset(ex.signature_algorithms or default)
        # the window end counts only under the national suite: the standard one has no other algorithm
        until = ex.ed25519_refused_from if suite == "sm" else None
        return cls(allowed, until)

    def refusal(self, alg: str, today: date | None = None) -> str | None:
        """Why signatures of `alg` are not accepted (a sentence), or None when they are."""
        if alg not in self.allowed:
            return f"{alg} signatures are not accepted here (accepted: {', '.join(sorted(self.allowed))})"
        day = today or now().astimezone(CHINA).date()
        if alg == "ed25519" and self.ed25519_refused_from is not None and day >= self.ed25519_refused_from:
            return f"the Ed25519 migration window ended on {self.ed25519_refused_from.isoformat()}"
        return None
