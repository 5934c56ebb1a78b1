"""Configuration from the environment (prefix PBOX_) and, optionally, a TOML file named by PBOX_CONFIG."""

import os
from datetime import date
from functools import cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Flow = Literal["records", "home_records", "statistics"]


class ExchangePeer(BaseModel):
    """A node this one exchanges with (docs/exchange.md). `name` is the CN of its TLS certificate and
    the `from` of its messages; `flows` is what this node sends it (default by the two roles)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")
    role: Literal["ministry", "province", "city"]
    region_code: str = Field(pattern=r"^\d{6}$")
    url: str = Field(pattern=r"^https://")
    signing_public_key: str = Field(description="the peer's Ed25519 or SM2 public key, PEM")
    # What the peer announces it signs with; its key must be of that algorithm. Empty: the key's.
    signing_algorithm: Literal["", "ed25519", "sm2"] = ""
    flows: list[Flow] | None = None


class ExchangeSettings(BaseModel):
    """Node-to-node exchange; off unless `enabled`. Files are PEM; the TLS certificate serves both as the
    node's server certificate and as its client certificate towards peers."""

    enabled: bool = False
    node_name: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9.-]{0,62}$")
    signing_key_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    ca_file: Path | None = None
    peers: list[ExchangePeer] = Field(default_factory=list)
    # Signature algorithms accepted from peers (docs/crypto-plan.md): empty means by the crypto
    # suite — `sm`: sm2, and ed25519 during the migration window; `standard`: ed25519 and sm2.
    signature_algorithms: list[Literal["ed25519", "sm2"]] = Field(default_factory=list)
    # Under the `sm` suite, the first day (China time) Ed25519 signatures are refused: the end of
    # the migration window. Unset: the window has no end yet (a warning at start).
    ed25519_refused_from: date | None = None
    # a proxy in front (nginx with ssl_verify_client) that passes the verified client DN in headers
    trust_proxy_client_cert: bool = False
    batch_size: int = Field(default=200, ge=1, le=500)
    poll_seconds: float = 1.0
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 300.0
    request_timeout_seconds: float = 60.0
    reconcile_interval_seconds: float = 600.0
    reconcile_days: int = 7
    statistics_interval_seconds: float = 3600.0
    statistics_days: int = 7
    # shipped outbox rows and inbox ids are kept this long (reconciliation looks back reconcile_days)
    retention_days: int = 35


class Pkcs11Settings(BaseModel):
    """The PKCS#11 module holding the field and signing keys (key_provider = pkcs11). Mechanisms are
    named as in python-pkcs11's `Mechanism` (AES_GCM, EDDSA, SHA256_HMAC) or given as a number for a
    vendor's (a certified 密码机's SM4-GCM / SM2-with-SM3 / HMAC-SM3, e.g. "0x80000101"); SoftHSM2
    has no SM2 or SM4, so with it the defaults are AES-GCM, Ed25519 and HMAC-SHA256 in the module."""

    module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    token_label: str = "pbox"  # noqa: S105 - a label, not a secret
    pin_file: Path | None = None  # root-only file with the user PIN
    pin: SecretStr = SecretStr("")  # tests only
    field_key_label: str = "pbox-field"
    field_mechanism: str = "AES_GCM"
    search_key_label: str = "pbox-field-search"
    search_mechanism: str = "SHA256_HMAC"
    signing_key_label: str = "pbox-exchange-signing"
    signing_mechanism: str = "EDDSA"
    signing_algorithm: Literal["ed25519", "sm2"] = "ed25519"  # what the module's signatures are


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PBOX_", env_nested_delimiter="__", extra="ignore")

    node_role: Literal["ministry", "province", "city"] = "province"
    region_code: str = Field(default="320000", pattern=r"^\d{6}$")

    database_url: str = "postgresql+psycopg://pbox@127.0.0.1:5432/pbox"
    db_pool_size: int = 10
    db_max_overflow: int = 10

    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_access_key: str = "pbox"
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "pbox-attachments"
    s3_region: str = "us-east-1"

    # Signs access tokens and derives per-record query codes; rotating it invalidates both.
    secret_key: SecretStr = SecretStr("")
    token_ttl_seconds: int = 2 * 3600
    owner_token_ttl_seconds: int = 30 * 60
    auth_fail_limit: int = 5
    auth_fail_window_seconds: int = 15 * 60

    # Personal-data field key (64+ hex digits), kept out of the database: a root-only file in
    # production, the variable in tests. The suite picks field encryption and audit-log hashing.
    field_key: SecretStr = SecretStr("")
    field_key_file: Path | None = None
    crypto_suite: Literal["standard", "sm"] = "standard"
    # Where keys come from (app.security.keys): `file` (the files and variables above, and the
    # exchange's signing_key_file) or `pkcs11` (a cryptographic module: keys never leave it).
    key_provider: Literal["file", "pkcs11"] = "file"
    pkcs11: Pkcs11Settings = Field(default_factory=lambda: Pkcs11Settings())
    # The audit log's chain key (64+ hex digits), outside the database like the field key: rows are
    # HMACs under it, so no database role can forge or re-hash them. Empty: a plain hash chain
    # (development only; a deployment always sets it, roles/app).
    audit_key: SecretStr = SecretStr("")
    # app-worker: how often it writes the audit chain's head to syslog (tag pbox-audit-anchor), which
    # the hosts forward to the central log host, so a later rewrite is found by verify-log.
    audit_anchor_interval_seconds: int = 300

    # Staff (regulators and administrators): GB/T 22239 8.1.4.1 login-failure and session handling.
    staff_lockout_threshold: int = 5
    staff_lockout_seconds: int = 30 * 60
    staff_idle_timeout_seconds: int = 15 * 60
    staff_session_max_seconds: int = 8 * 3600
    staff_password_min_length: int = 12
    staff_password_max_age_days: int = 90
    # First login (separation of duties): how long an activation code handed out by the system
    # administrator stays valid, and how long its owner has between setting the password and
    # confirming the new TOTP.
    staff_enrolment_code_seconds: int = 72 * 3600
    # Staff one-time passwords: `rfc6238` (authenticator apps) or `sm3` (GM/T 0021 SM3 dynamic
    # passwords, for sites that issue national-algorithm tokens); app.security.otp.
    staff_otp_algorithm: Literal["rfc6238", "sm3"] = "rfc6238"
    staff_enrolment_step_seconds: int = 15 * 60
    # Longest an owner may authorize an enterprise to read a car's history.
    grant_max_days: int = 30
    # Full-history verification of an owner against the vehicle registration data of 公安交管
    # (app.security.vehicle_registry, docs/api.md): the province's endpoint (https, optionally with a
    # bearer token from a root-only file and mutual TLS). Empty: the 行驶证 photo review by a
    # regulator is the only way. The stand-in file (a JSON list of registered cars) is for the lab
    # and tests only and wins over the URL.
    vehicle_registry_url: str = Field(default="", pattern=r"^$|^https?://")
    vehicle_registry_token_file: Path | None = None
    vehicle_registry_ca_file: Path | None = None
    vehicle_registry_cert_file: Path | None = None
    vehicle_registry_key_file: Path | None = None
    vehicle_registry_timeout_seconds: float = 5.0
    vehicle_registry_standin_file: Path | None = None
    # Portal rules: an owner rates a repair within this many days of settlement; a complaint must be
    # answered by the regulators within this many days of filing, or it is flagged overdue.
    rating_window_days: int = 90
    complaint_deadline_days: int = 15

    max_body_bytes: int = 4 * 1024 * 1024
    max_attachment_bytes: int = 10 * 1024 * 1024

    # Only requests from these addresses (CIDRs: the site's load balancers) may name the client's
    # address in X-Real-IP / X-Forwarded-For; anyone else is recorded (audit log, rate limits) under
    # the address it connects from.
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]
    )

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    log_level: str = "INFO"
    worker_interval_seconds: int = 3600
    # app-worker: how often it re-verifies the whole audit-log hash chain, and where it serves its
    # own metrics (pbox_audit_chain_*) for Prometheus; 0 turns that listener off.
    audit_verify_interval_seconds: int = 600
    # app-worker: how often it re-aggregates the statistics of changed days (until then those days
    # are read from the raw tables: exact, only slower)
    stats_refresh_interval_seconds: int = 60
    worker_metrics_port: int = 9465

    # app-web serves HTTPS when these are set (the load balancer and peer nodes verify it against the
    # internal CA); client certificates are optional, verified against the CA when shown, and the
    # exchange endpoints require one.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None

    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if path := os.environ.get("PBOX_CONFIG"):
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources


@cache
def get_settings() -> Settings:
    return Settings()
