"""Per-field encryption of personal data and keyed hashes to search it, with keys kept outside the database.

Two suites: `standard` (AES-256-GCM, HMAC-SHA256) and `sm` (SM4-GCM, HMAC-SM3, GB/T 39786). Every
ciphertext starts with its suite's byte, so data written under one suite stays readable after the
configured suite changes; search hashes do not carry over and must be rebuilt after such a change.
The field name is bound in as associated data, so a ciphertext copied into another column fails.
"""

import os
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

Suite = Literal["standard", "sm"]
_SUITE_BYTE: dict[Suite, int] = {"standard": 1, "sm": 2}
_NONCE = 12
_TAG = 16


class FieldKeyError(ValueError):
    """The field key is missing or malformed: the process must not start without it."""


def load_master_key(key_hex: str | None, key_file: Path | None) -> bytes:
    """The master key from the environment (hex) or a key file (hex, root-readable only)."""
    text = key_hex or (key_file.read_text().strip() if key_file else "")
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise FieldKeyError("field key must be hex") from exc
    if len(key) < 32:
        raise FieldKeyError("field key must be at least 32 bytes (64 hex digits): set PBOX_FIELD_KEY_FILE")
    return key


def _hash(suite: Suite) -> hashes.HashAlgorithm:
    return hashes.SM3() if suite == "sm" else hashes.SHA256()


def _derive(master: bytes, suite: Suite, purpose: bytes, length: int) -> bytes:
    return HKDF(_hash(suite), length, salt=None, info=b"pbox-field:" + purpose).derive(master)


class FieldCipher:
    def __init__(self, master: bytes, suite: Suite = "standard") -> None:
        self.suite = suite
        # both suites' keys are derived up front: old ciphertexts may be of the other suite
        self._enc = {
            "standard": _derive(master, "standard", b"enc", 32),
            "sm": _derive(master, "sm", b"enc", 16),  # SM4 keys are 128 bits
        }
        self._search = _derive(master, suite, b"search", 32)

    def encrypt(self, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        data, aad = plaintext.encode(), field.encode()
        if self.suite == "sm":
            enc = Cipher(algorithms.SM4(self._enc["sm"]), modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            sealed = enc.update(data) + enc.finalize() + enc.tag
        else:
            sealed = AESGCM(self._enc["standard"]).encrypt(nonce, data, aad)
        return bytes([_SUITE_BYTE[self.suite]]) + nonce + sealed

    def decrypt(self, field: str, blob: bytes) -> str:
        nonce, sealed, aad = blob[1 : 1 + _NONCE], blob[1 + _NONCE :], field.encode()
        try:
            if blob[0] == _SUITE_BYTE["sm"]:
                dec = Cipher(algorithms.SM4(self._enc["sm"]), modes.GCM(nonce, sealed[-_TAG:])).decryptor()
                dec.authenticate_additional_data(aad)
                return (dec.update(sealed[:-_TAG]) + dec.finalize()).decode()
            if blob[0] == _SUITE_BYTE["standard"]:
                return AESGCM(self._enc["standard"]).decrypt(nonce, sealed, aad).decode()
        except InvalidTag as exc:
            raise ValueError(f"{field}: ciphertext does not authenticate") from exc
        raise ValueError(f"{field}: unknown suite byte {blob[0]}")

    def search_hash(self, field: str, value: str) -> bytes:
        """Deterministic keyed hash for equality lookups; without the key it reveals nothing guessable."""
        mac = hmac.HMAC(self._search, _hash(self.suite))
        mac.update(field.encode() + b"\x00" + value.encode())
        return mac.finalize()
