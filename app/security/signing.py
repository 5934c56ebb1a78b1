"""Message signatures: Ed25519 over the canonical JSON of the message without its `sig` member.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8 without escaping, no floating-point
numbers anywhere (amounts travel as decimal strings) — so any JSON library re-serializes a received
message to the very bytes that were signed.
"""

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG = "ed25519"
_DOMAIN = b"pbox-exchange-v1\n"  # signatures made here mean nothing to any other protocol


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bytes(message: dict[str, Any]) -> bytes:
    return _DOMAIN + canonical({k: v for k, v in message.items() if k != "sig"})


class Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> "Signer":
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(key)

    def public_pem(self) -> str:
        return public_pem(self._key.public_key())

    def sign(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message with its `sig` member set."""
        value = self._key.sign(signed_bytes(message))
        return {**message, "sig": {"alg": ALG, "value": base64.b64encode(value).decode()}}


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify(key: Ed25519PublicKey, message: dict[str, Any]) -> bool:
    sig = message.get("sig")
    if not isinstance(sig, dict) or sig.get("alg") != ALG or not isinstance(sig.get("value"), str):
        return False
    try:
        key.verify(base64.b64decode(sig["value"], validate=True), signed_bytes(message))
    except (InvalidSignature, ValueError):
        return False
    return True


def new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
