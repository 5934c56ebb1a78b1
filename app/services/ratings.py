"""Owners' ratings of repairs on the guide's five dimensions, and the enterprise's summary of them."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Rating, RepairRecord
from app.domain.clock import now, today_in_china
from app.domain.errors import AppError
from app.security.rbac import Perm, Principal, require
from app.services import owners

# column → the guide's name for it (3.2.3), in the guide's order
DIMENSIONS: dict[str, str] = {
    "attitude": "服务态度",
    "quality": "维修质量",
    "efficiency": "维修效率",
    "transparency": "价格透明度",
    "environment": "店面环境",
}
SCORES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Scores:
    attitude: int
    quality: int
    efficiency: int
    transparency: int
    environment: int

    def validate(self) -> None:
        if any(not 1 <= v <= 5 for v in self.__dict__.values()):
            raise AppError("RATING_SCORE_INVALID", 422)


def rateable_record(session: Session, who: Principal, record_id: int) -> RepairRecord:
    """A live repair the owner may see and rate. Seeing it through a query code is not enough: the
    shop prints its own codes, so a code-only binder may be the shop itself minting 5-star ratings.
    A rating needs the whole-history proof (registry check or 行驶证 review) no shop holds."""
    head, seen = owners.visible_record(session, who.id, record_id)
    if not seen.full:
        raise AppError("FULL_VERIFICATION_REQUIRED", 403)
    return head


def window_open(head: RepairRecord, window_days: int) -> bool:
    return today_in_china() <= head.settle_date + timedelta(days=window_days)


def rate(
    session: Session, who: Principal, record_id: int, scores: Scores, comment: str | None, window_days: int
) -> int:
    require(who, Perm.REPAIR_RATE)
    scores.validate()
    head = rateable_record(session, who, record_id)
    if not window_open(head, window_days):
        raise AppError("RATING_WINDOW_CLOSED", 409, f"已超过评价期限（结算后 {window_days} 天内可评价）")
    rating_id = session.scalar(
        pg_insert(Rating)
        .values(
            record_id=record_id,
            enterprise_id=head.enterprise_id,
            owner_id=who.id,
            comment=(comment or "").strip()[:1000] or None,
            **scores.__dict__,
        )
        .on_conflict_do_nothing(index_elements=["record_id"])
        .returning(Rating.id)
    )
    if rating_id is None:
        raise AppError("RATING_EXISTS", 409)
    return rating_id


def for_records(session: Session, record_ids: list[int]) -> dict[int, Rating]:
    rows = session.scalars(select(Rating).where(Rating.record_id.in_(record_ids)))
    return {r.record_id: r for r in rows}


def reply(session: Session, who: Principal, rating_id: int, text: str) -> None:
    """The enterprise answers a rating of one of its repairs, once."""
    require(who, Perm.COMPLAINT_ANSWER)
    r = session.get(Rating, rating_id, with_for_update=True)
    if r is None or r.enterprise_id != who.enterprise_id:
        raise AppError("NOT_FOUND", 404)
    if not text.strip():
        raise AppError("TEXT_REQUIRED", 422)
    if r.reply is not None:
        raise AppError("REPLY_EXISTS", 409)
    r.reply, r.replied_at = text.strip()[:1000], now()


def of_enterprise(session: Session, enterprise_id: int, limit: int = 50) -> list[Rating]:
    return list(
        session.scalars(
            select(Rating)
            .where(Rating.enterprise_id == enterprise_id)
            .order_by(Rating.created_at.desc(), Rating.id.desc())
            .limit(limit)
        )
    )


def summary(session: Session, enterprise_id: int) -> dict[str, Any]:
    """Number of ratings, the average of each dimension (None before the first rating) and how many
    ratings gave each score (1–5) in each dimension."""
    cols = [func.avg(getattr(Rating, d)) for d in DIMENSIONS]
    dist = [func.count().filter(getattr(Rating, d) == s) for d in DIMENSIONS for s in SCORES]
    row = session.execute(
        select(func.count(), *cols, *dist).where(Rating.enterprise_id == enterprise_id)
    ).one()
    counts = row[1 + len(DIMENSIONS) :]
    row = row[: 1 + len(DIMENSIONS)]
    count = int(row[0])
    averages = {
        d: (None if v is None else round(float(v), 2)) for d, v in zip(DIMENSIONS, row[1:], strict=True)
    }
    overall = None if count == 0 else round(sum(float(v) for v in row[1:]) / len(DIMENSIONS), 2)
    distribution = {
        d: {str(s): int(counts[i * len(SCORES) + j]) for j, s in enumerate(SCORES)}
        for i, d in enumerate(DIMENSIONS)
    }
    return {"count": count, "averages": averages, "overall": overall, "distribution": distribution}
