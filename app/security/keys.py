"""The one place the app gets its keys from (issue 24, docs/crypto-plan.md §4).

Two providers, chosen by `key_provider`:
- `file` (the default, today's behaviour): the field key from PBOX_FIELD_KEY / PBOX_FIELD_KEY_FILE,
  the exchange signing key from `exchange.signing_key_file`, the audit-chain key from PBOX_AUDIT_KEY;
- `pkcs11`: a cryptographic module (a certified 密码机 through its vendor's PKCS#11 library; SoftHSM2
  in the lab and tests) holds the field-encryption, search and signing keys and does the work
  itself: those keys never leave it (app.security.pkcs11keys).

The session secret and the audit-chain key stay with the file provider in both modes for now: they
are HMAC keys of this app only, and moving them into the module is the next step of issue 24.
"""

from typing import Protocol

from app.security.auditlog import parse_key
from app.security.fieldcrypt import FieldCipher, load_master_key
from app.security.signatures import Signer, load_private_pem
from app.settings import Settings


class KeyProvider(Protocol):
    def field_cipher(self) -> FieldCipher:
        """Field encryption and search hashes under the configured suite."""
        ...

    def exchange_signer(self) -> Signer:
        """The node's exchange signing key."""
        ...

    def audit_key(self) -> bytes | None:
        """The audit chain's HMAC key (None: a plain hash chain, development only)."""
        ...


class FileKeys:
    """Keys from files and variables (root-only files on the hosts, made by the roles)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def field_cipher(self) -> FieldCipher:
        s = self.settings
        key = load_master_key(s.field_key.get_secret_value() or None, s.field_key_file)
        return FieldCipher(key, s.crypto_suite)

    def exchange_signer(self) -> Signer:
        path = self.settings.exchange.signing_key_file
        if path is None:
            raise ValueError("exchange.signing_key_file must be set when the exchange is enabled")
        try:
            return load_private_pem(path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def audit_key(self) -> bytes | None:
        return parse_key(self.settings.audit_key.get_secret_value())


def key_provider(settings: Settings) -> KeyProvider:
    if settings.key_provider == "pkcs11":
        from app.security.pkcs11keys import Pkcs11Keys  # only sites with a module load its library

        return Pkcs11Keys(settings)
    return FileKeys(settings)
