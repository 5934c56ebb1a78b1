"""Keys in a PKCS#11 module (key_provider = pkcs11): field encryption, search hashes and exchange
signatures are computed inside it, by key objects found by label; no key value is ever read out.

The module is a certified 密码机 / 服务器密码机 in production (its vendor's PKCS#11 library, SM4-GCM,
HMAC-SM3 and SM2-with-SM3 through the vendor's mechanism numbers, set in `pkcs11.*_mechanism`), or
SoftHSM2 in the lab and the tests, which has neither SM2 nor SM4: there AES-256-GCM, HMAC-SHA256 and
Ed25519 run inside the module (docs/crypto-plan.md §4).

Ciphertexts made in the module carry suite byte 3 (`MODULE_SUITE_BYTE`); those written before the
switch (suite bytes 1 and 2, keys derived from the field key) stay readable while the file field key
is still configured, until they are re-encrypted.
"""

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pkcs11
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PKCS11Error, UserAlreadyLoggedIn
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from app.security.auditlog import parse_key
from app.security.fieldcrypt import FieldCipher, load_master_key
from app.security.signatures import Algorithm, ed25519_public_pem, sm2_public_pem
from app.settings import Settings

MODULE_SUITE_BYTE = 3
_NONCE = 12
T = TypeVar("T")


class ModuleError(RuntimeError):
    """The module, its token, its PIN or a key object is missing or refused the operation."""


def mechanism(name: str) -> int:
    """A mechanism by python-pkcs11 name (AES_GCM) or number (a vendor's: 0x80000101)."""
    if name.lower().startswith("0x") or name.isdigit():
        return int(name, 0)
    try:
        return Mechanism[name]
    except KeyError as exc:
        raise ModuleError(f"unknown PKCS#11 mechanism {name!r}") from exc


class Module:
    """One session with the token, shared by the process's threads under a lock (a PKCS#11 session
    runs one operation at a time). The login is the process's (PKCS#11 logs in an application, not a
    session): a second session finds it logged in already."""

    def __init__(self, settings: Settings, rw: bool = False) -> None:
        cfg = settings.pkcs11
        pin = cfg.pin.get_secret_value() or (cfg.pin_file.read_text().strip() if cfg.pin_file else "")
        if not pin:
            raise ModuleError("pkcs11.pin_file must name the file with the token's user PIN")
        try:
            token = pkcs11.lib(str(cfg.module)).get_token(token_label=cfg.token_label)
            try:
                self._session = token.open(rw=rw, user_pin=pin)
            except UserAlreadyLoggedIn:
                self._session = token.open(rw=rw)
        except (PKCS11Error, RuntimeError) as exc:
            raise ModuleError(f"cannot open token {cfg.token_label!r} in {cfg.module}: {exc!r}") from exc
        self._lock = threading.Lock()

    def key(self, label: str, cls: ObjectClass) -> Any:
        try:
            with self._lock:
                return self._session.get_key(object_class=cls, label=label)
        except PKCS11Error as exc:
            raise ModuleError(f"no {cls.name} key labelled {label!r} in the token: {exc!r}") from exc

    def run(self, op: Callable[[], T]) -> T:
        with self._lock:
            return op()


class ModuleFieldCipher(FieldCipher):
    """A FieldCipher whose keys stay in the module; old file-key ciphertexts are read by `legacy`."""

    def __init__(self, module: Module, settings: Settings, legacy: FieldCipher | None) -> None:
        cfg = settings.pkcs11
        self.suite = settings.crypto_suite
        self._module, self._legacy = module, legacy
        self._enc_key = module.key(cfg.field_key_label, ObjectClass.SECRET_KEY)
        self._search_key = module.key(cfg.search_key_label, ObjectClass.SECRET_KEY)
        self._enc_mech, self._search_mech = mechanism(cfg.field_mechanism), mechanism(cfg.search_mechanism)

    def encrypt(self, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        params = GCMParams(nonce, field.encode(), 128)
        data = plaintext.encode()
        sealed = self._module.run(
            lambda: self._enc_key.encrypt(data, mechanism=self._enc_mech, mechanism_param=params)
        )
        return bytes([MODULE_SUITE_BYTE]) + nonce + sealed

    def decrypt(self, field: str, blob: bytes) -> str:
        if blob[:1] != bytes([MODULE_SUITE_BYTE]):
            if self._legacy is None:
                raise ValueError(f"{field}: written under the file field key, which is not configured")
            return self._legacy.decrypt(field, blob)
        params = GCMParams(blob[1 : 1 + _NONCE], field.encode(), 128)
        try:
            sealed = blob[1 + _NONCE :]
            data = self._module.run(
                lambda: self._enc_key.decrypt(sealed, mechanism=self._enc_mech, mechanism_param=params)
            )
        except PKCS11Error as exc:  # CKR_ENCRYPTED_DATA_INVALID: the tag does not authenticate
            raise ValueError(f"{field}: ciphertext does not authenticate") from exc
        return data.decode()

    def search_hash(self, field: str, value: str) -> bytes:
        data = field.encode() + b"\x00" + value.encode()
        return self._module.run(lambda: self._search_key.sign(data, mechanism=self._search_mech))


class ModuleSigner:
    """The exchange signing key, a private key object in the module."""

    def __init__(self, module: Module, settings: Settings) -> None:
        cfg = settings.pkcs11
        self._module = module
        self.alg: Algorithm = cfg.signing_algorithm
        self._key = module.key(cfg.signing_key_label, ObjectClass.PRIVATE_KEY)
        self._mech = mechanism(cfg.signing_mechanism)
        public = module.key(cfg.signing_key_label, ObjectClass.PUBLIC_KEY)
        self._public_pem = _public_pem(self.alg, public[Attribute.EC_POINT])

    def sign(self, data: bytes) -> bytes:
        raw = self._module.run(lambda: self._key.sign(data, mechanism=self._mech))
        if self.alg == "sm2":  # modules give r‖s; messages carry GM/T 0009's DER
            return encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        return raw

    def public_pem(self) -> str:
        return self._public_pem


def _public_pem(alg: Algorithm, ec_point: bytes) -> str:
    """CKA_EC_POINT is a DER OCTET STRING around the raw point (PKCS#11 3.0 §2.3.3)."""
    raw = ec_point[2:] if ec_point[:1] == b"\x04" and ec_point[1] == len(ec_point) - 2 else ec_point
    return ed25519_public_pem(raw) if alg == "ed25519" else sm2_public_pem(raw)


class Pkcs11Keys:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.module = Module(settings)

    def field_cipher(self) -> FieldCipher:
        s = self.settings
        legacy = None
        if s.field_key.get_secret_value() or s.field_key_file:
            legacy = FieldCipher(load_master_key(s.field_key.get_secret_value() or None, s.field_key_file),
                                 s.crypto_suite)
        return ModuleFieldCipher(self.module, s, legacy)

    def exchange_signer(self) -> ModuleSigner:
        return ModuleSigner(self.module, self.settings)

    def audit_key(self) -> bytes | None:
        return parse_key(self.settings.audit_key.get_secret_value())


def create_keys(settings: Settings) -> str:
    """Make the module's keys (install time: `app-admin keys init-module`; the tests): the field
    and search keys and the signing key pair, none extractable. Returns the signing public key PEM.
    SoftHSM2 only: a 密码机's keys are made with its vendor's tools, under its key ceremony."""
    cfg = settings.pkcs11
    module = Module(settings, rw=True)
    secret = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.TOKEN: True}

    def make() -> Any:
        s = module._session
        s.generate_key(KeyType.AES, 256, label=cfg.field_key_label, store=True,
                       template={**secret, Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
        s.generate_key(KeyType.GENERIC_SECRET, 256, label=cfg.search_key_label, store=True,
                       template={**secret, Attribute.SIGN: True, Attribute.VERIFY: True})
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")}, local=True
        )
        params.generate_keypair(store=True, label=cfg.signing_key_label,
                                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})

    if cfg.signing_algorithm != "ed25519":
        raise ModuleError("create_keys makes SoftHSM2's Ed25519 key; a 密码机's SM2 keys: its vendor's tools")
    module.run(make)
    return ModuleSigner(module, settings).public_pem()
