"""Engine and sessions. Services take a Session and never commit on their own; callers own the transaction."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from psycopg import errors as pg_errors
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class Database:
    def __init__(self, url: str, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.engine: Engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            # an unreachable server fails a request in seconds (answered 503), not after the OS's minutes
            connect_args={"connect_timeout": 5},
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def run(self, work: Callable[[Session], T], attempts: int = 3) -> T:
        """`work` in one transaction, run again from scratch if PostgreSQL picked it as a deadlock victim."""
        for attempt in range(attempts):
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as exc:
                if not isinstance(exc.orig, _RETRYABLE) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    def dispose(self) -> None:
        self.engine.dispose()
