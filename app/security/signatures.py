"""Signature algorithms a key may be for: Ed25519 (RFC 8032) and SM2 with SM3 (GB/T 32918, GM/T 0009).

A public key names its own algorithm: its SubjectPublicKeyInfo is either Ed25519's or an EC key on
the SM2 curve (OID 1.2.156.10197.1.301), so a peer announces its algorithm with its key. SM2
signatures use the standards' default signer ID 1234567812345678 (GM/T 0009 §10) inside Z, and are
DER SEQUENCE{r, s} (GM/T 0009 §7.3). SM2 comes from `tongsuopy` (the `cryptography` API built on
Tongsuo, docs/crypto-plan.md §2): `cryptography` has SM3 and SM4 but no SM2.
"""

from typing import Literal, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from tongsuopy.crypto import exceptions as ts_exceptions
from tongsuopy.crypto import hashes as ts_hashes
from tongsuopy.crypto import serialization as ts_serialization
from tongsuopy.crypto.asymciphers import ec as ts_ec

Algorithm = Literal["ed25519", "sm2"]
ALGORITHMS: tuple[Algorithm, ...] = ("ed25519", "sm2")
SM2_DEFAULT_ID = b"1234567812345678"  # the only ID tongsuopy signs with; peers must use it too
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123  # n, GB/T 32918.5


class Signer(Protocol):
    """Something that signs with a private key it may not reveal (a file, or a PKCS#11 module)."""

    alg: Algorithm

    def sign(self, data: bytes) -> bytes: ...

    def public_pem(self) -> str: ...


class PublicKey:
    """A peer's public key and the algorithm it is for."""

    def __init__(self, alg: Algorithm, key: object) -> None:
        self.alg, self._key = alg, key

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            if self.alg == "sm2":
                if not _canonical_sm2_der(signature):
                    return False  # malformed DER makes Tongsuo raise an internal error, not refuse
                self._key.verify(signature, data, ts_ec.ECDSA(ts_hashes.SM3()))  # type: ignore[attr-defined]
            else:
                self._key.verify(signature, data)  # type: ignore[attr-defined]
        except (InvalidSignature, ts_exceptions.InvalidSignature, ValueError):
            return False
        return True


def _canonical_sm2_der(signature: bytes) -> bool:
    """Whether `signature` is the one DER encoding of an (r, s) in [1, n-1]: no second encoding of a
    signature is accepted."""
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    return 0 < r < SM2_ORDER and 0 < s < SM2_ORDER and encode_dss_signature(r, s) == signature


class SoftwareSigner:
    """A private key held in this process (the file key provider)."""

    def __init__(self, key: object) -> None:
        self._key = key
        self.alg: Algorithm = "ed25519" if isinstance(key, Ed25519PrivateKey) else "sm2"

    def sign(self, data: bytes) -> bytes:
        if self.alg == "sm2":
            return self._key.sign(data, ts_ec.ECDSA(ts_hashes.SM3()))  # type: ignore[attr-defined]
        return self._key.sign(data)  # type: ignore[attr-defined]

    def public_pem(self) -> str:
        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        if self.alg == "sm2":
            pub = self._key.public_key()  # type: ignore[attr-defined]
            ts_fmt = ts_serialization.PublicFormat.SubjectPublicKeyInfo
            return pub.public_bytes(ts_serialization.Encoding.PEM, ts_fmt).decode()
        return self._key.public_key().public_bytes(serialization.Encoding.PEM, fmt).decode()  # type: ignore[attr-defined]


def load_private_pem(data: bytes) -> SoftwareSigner:
    """An Ed25519 or SM2 private key (PKCS#8 PEM, unencrypted: the file is root-only on the host)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if isinstance(key, Ed25519PrivateKey):
        return SoftwareSigner(key)
    try:
        sm2 = ts_serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not an Ed25519 or SM2 private key") from exc
    if not isinstance(getattr(sm2, "curve", None), ts_ec.SM2):
        raise ValueError("not an Ed25519 or SM2 private key")
    return SoftwareSigner(sm2)


def load_public_pem(pem: str) -> PublicKey:
    """An Ed25519 or SM2 public key (SubjectPublicKeyInfo PEM); ValueError for anything else."""
    data = pem.encode()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None  # cryptography does not know the SM2 curve
    if isinstance(key, Ed25519PublicKey):
        return PublicKey("ed25519", key)
    try:
        sm2 = ts_serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError("not an Ed25519 or SM2 public key") from exc
    if not isinstance(getattr(sm2, "curve", None), ts_ec.SM2):
        raise ValueError("not an Ed25519 or SM2 public key")
    return PublicKey("sm2", sm2)


def ed25519_public_pem(raw: bytes) -> str:
    """The PEM of a raw 32-byte Ed25519 public key (as a PKCS#11 module gives it)."""
    key = Ed25519PublicKey.from_public_bytes(raw)
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.PEM, fmt).decode()


def sm2_public_pem(point: bytes) -> str:
    """The PEM of an uncompressed SM2 point 04‖X‖Y (as a 密码机's PKCS#11 module gives it)."""
    key = ts_ec.EllipticCurvePublicKey.from_encoded_point(ts_ec.SM2(), point)
    fmt = ts_serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(ts_serialization.Encoding.PEM, fmt).decode()


def new_private_pem(alg: Algorithm = "ed25519") -> bytes:
    """A new private key, PKCS#8 PEM."""
    enc, fmt = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    if alg == "sm2":
        key = ts_ec.generate_private_key(ts_ec.SM2())
        ts_fmt = ts_serialization.PrivateFormat.PKCS8
        return key.private_bytes(ts_serialization.Encoding.PEM, ts_fmt, ts_serialization.NoEncryption())
    return Ed25519PrivateKey.generate().private_bytes(enc, fmt, serialization.NoEncryption())
