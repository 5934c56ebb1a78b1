"""Wrong-credential throttling kept in PostgreSQL, so every web worker sees the same count."""

from datetime import timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.db.models import AuthFailure
from app.domain.clock import now
from app.domain.errors import AppError


class FailureLimiter:
    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window = timedelta(seconds=window_seconds)

    def check(self, session: Session, subjects: dict[str, int]) -> None:
        """Refuse before verifying when any subject (with its own multiple of the limit) is over."""
        since = now() - self.window
        for subject, factor in subjects.items():
            count = session.scalar(
                select(func.count()).where(AuthFailure.subject == subject, AuthFailure.at > since)
            )
            if (count or 0) >= self.limit * factor:
                raise AppError("AUTH_RATE_LIMITED", 429)

    def record_failure(self, session: Session, subjects: dict[str, int]) -> None:
        session.execute(insert(AuthFailure), [{"subject": s} for s in subjects])

    def clear(self, session: Session, subject: str) -> None:
        session.execute(delete(AuthFailure).where(AuthFailure.subject == subject))

    def purge(self, session: Session) -> int:
        """Failures older than the window no longer count: drop them rather than keep them for ever
        (their subjects name accounts, if only by keyed hashes)."""
        return session.execute(delete(AuthFailure).where(AuthFailure.at <= now() - self.window)).rowcount
