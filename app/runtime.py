"""What a running web or worker process holds: settings, the database, the object store and the keys."""

from dataclasses import dataclass

from app.db.session import Database
from app.security.querycodes import QueryCodes
from app.security.ratelimit import FailureLimiter
from app.security.tokens import TokenSigner
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

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        key = settings.secret_key.get_secret_value().encode()
        return cls(
            settings=settings,
            db=Database(settings.database_url, settings.db_pool_size, settings.db_max_overflow),
            objects=ObjectStore(settings),
            tokens=TokenSigner(key),
            codes=QueryCodes(key),
            limiter=FailureLimiter(settings.auth_fail_limit, settings.auth_fail_window_seconds),
        )

    def close(self) -> None:
        self.db.dispose()
