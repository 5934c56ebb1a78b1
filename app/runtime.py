"""What a running web or worker process holds: settings, the database, the object store and the keys."""

from dataclasses import dataclass

from app.db.session import Database
from app.node import ExchangeNode
from app.security.auditlog import AuditLog
from app.security.fieldcrypt import FieldCipher
from app.security.keys import KeyProvider, key_provider
from app.security.querycodes import QueryCodes
from app.security.ratelimit import FailureLimiter
from app.security.staffauth import StaffAuth
from app.security.tokens import TokenSigner
from app.security.vehicle_registry import VehicleRegistry
from app.security.vehicle_registry import from_settings as vehicle_registry
from app.settings import Settings
from app.storage import ObjectStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    objects: ObjectStore
    tokens: TokenSigner
    codes: QueryCodes
    limiter: FailureLimiter
    crypto: FieldCipher
    audit: AuditLog
    staff_auth: StaffAuth
    exchange: ExchangeNode | None = None
    registry: VehicleRegistry | None = None  # None: 行驶证 photo review only

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        key = settings.secret_key.get_secret_value().encode()
        keys = key_provider(settings)  # the field and signing keys, from files or a PKCS#11 module
        crypto = keys.field_cipher()
        audit = audit_log(settings, keys)
        return cls(
            settings=settings,
            db=Database(settings.database_url, settings.db_pool_size, settings.db_max_overflow),
            objects=ObjectStore(settings),
            tokens=TokenSigner(key),
            codes=QueryCodes(key),
            limiter=failure_limiter(settings),
            crypto=crypto,
            audit=audit,
            staff_auth=StaffAuth(settings, crypto, audit),
            exchange=ExchangeNode.from_settings(settings, keys),
            registry=vehicle_registry(settings),
        )

    def close(self) -> None:
        self.db.dispose()


def field_cipher(settings: Settings) -> FieldCipher:
    return key_provider(settings).field_cipher()


def failure_limiter(settings: Settings) -> FailureLimiter:
    """Wrong-credential throttling as configured (the web's checks, the worker's purge)."""
    return FailureLimiter(settings.auth_fail_limit, settings.auth_fail_window_seconds)


def audit_log(settings: Settings, keys: KeyProvider | None = None) -> AuditLog:
    """The audit log as configured: SM3 with the national suite, keyed when the audit key is set."""
    return AuditLog("sm3" if settings.crypto_suite == "sm" else "sha256",
                    (keys or key_provider(settings)).audit_key())


def node_name(settings: Settings) -> str:
    """The name audit anchors carry (the exchange's node name, or its default): a log host may serve
    several nodes."""
    return settings.exchange.node_name or f"{settings.node_role}-{settings.region_code}"
