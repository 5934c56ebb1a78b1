"""Pre-aggregated statistics (tables of migration 0006): how they are built from the raw tables, kept
up to date, and read back for a period.

Why the worker and not the write transaction: an upload only writes a "dirty day" mark (a trigger,
in its own transaction, one row per day and transaction so concurrent uploads never wait on each
other); re-aggregating a day and its month costs tens of milliseconds at 1M repairs, which the
ingest path should not pay per upload, nor serialise on. Exactness does not depend on the worker's
pace: a period's days still marked are read from the raw tables (`Plan.raw`), the rest from the
aggregates — full months from the month tables, other days from the day tables.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.clock import CHINA

_DAY = "(({0}) AT TIME ZONE 'Asia/Shanghai')::date"
# Live repairs (latest version, not withdrawn) settled on :raw_days. The range of their heads'
# receipt times (:rv_lo, :rv_hi) lets the planner leave out the monthly partitions of versions that
# cannot match: without it PostgreSQL prices a probe as if it touched every partition and reads every
# version instead (300 ms instead of 5 for a day at 300k repairs).
_LIVE = """
    FROM repair_record rr
    JOIN record_version rv ON rv.record_id = rr.id AND rv.version = rr.current_version
                          AND rv.received_at = rr.current_received_at
    JOIN enterprise e ON e.id = rr.enterprise_id
    WHERE rr.status = 'active' AND rr.settle_date = ANY(:raw_days)
      AND rv.received_at BETWEEN :rv_lo AND :rv_hi AND e.region_code LIKE :scope
"""
_DIMENSIONS = ("attitude", "quality", "efficiency", "transparency", "environment")


@dataclass(frozen=True)
class Aggregate:
    name: str
    keys: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]  # (column, how months combine days: sum or max)
    # SELECT day, *keys, *measures from the raw tables for :raw_days (instants :raw_lo..:raw_hi) and the
    # enterprises whose region matches :scope (a LIKE pattern: all of them when aggregating)
    source: str

    @property
    def columns(self) -> str:
        return ", ".join((*self.keys, *(m for m, _ in self.measures)))


VOLUME = Aggregate(
    "stat_volume",
    ("enterprise_id",),
    (("records", "sum"), ("amount", "sum")),
    f"SELECT rr.settle_date, rr.enterprise_id, count(*), coalesce(sum(rv.total), 0) {_LIVE} GROUP BY 1, 2",
)
KIND = Aggregate(
    "stat_kind",
    ("region_code", "brand", "repair_type"),
    (("records", "sum"),),
    "SELECT rr.settle_date, e.region_code, coalesce(v.brand, '未知'), rv.repair_type, count(*)"
    + _LIVE.replace("WHERE", "LEFT JOIN vehicle v ON v.vin = rr.vin WHERE")
    + " GROUP BY 1, 2, 3, 4",
)
PART = Aggregate(
    "stat_part",
    ("region_code", "name", "kind"),
    (("lines", "sum"), ("quantity", "sum")),
    "SELECT rr.settle_date, e.region_code, part->>'name', part->>'kind', count(*),"
    " sum((part->>'quantity')::numeric)"
    + _LIVE.replace("WHERE", ", jsonb_array_elements(coalesce(rv.parts, jsonb_build_array())) part WHERE")
    + " GROUP BY 1, 2, 3, 4",
)
RATING = Aggregate(
    "stat_rating",
    ("region_code", "dimension", "score"),
    (("n", "sum"),),
    f"SELECT {_DAY.format('r.created_at')} AS d, e.region_code, x.dimension, x.score, count(*)"
    " FROM rating r JOIN enterprise e ON e.id = r.enterprise_id,"
    " LATERAL (VALUES " + ", ".join(f"('{d}', r.{d})" for d in _DIMENSIONS) + ") x(dimension, score)"
    " WHERE r.created_at >= :raw_lo AND r.created_at < :raw_hi AND e.region_code LIKE :scope"
    f" AND {_DAY.format('r.created_at')} = ANY(:raw_days) GROUP BY 1, 2, 3, 4",
)
UPLOAD = Aggregate(
    "stat_upload",
    ("enterprise_id",),
    (("versions", "sum"), ("last_day", "max")),
    f"SELECT {_DAY.format('rv.received_at')} AS d, rv.enterprise_id, count(*),"
    f" {_DAY.format('rv.received_at')}"
    " FROM record_version rv JOIN enterprise e ON e.id = rv.enterprise_id"
    " WHERE rv.received_at >= :raw_lo AND rv.received_at < :raw_hi AND e.region_code LIKE :scope"
    f" AND {_DAY.format('rv.received_at')} = ANY(:raw_days) GROUP BY 1, 2",
)
AGGREGATES = (VOLUME, KIND, PART, RATING, UPLOAD)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time.min, CHINA)


def _month(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def raw_params(session: Session, days: list[date]) -> dict[str, Any]:
    """The parameters of the sources for `days`."""
    lo, hi = (min(days), max(days)) if days else (date(2000, 1, 1), date(2000, 1, 1))
    p = {"raw_days": days, "raw_lo": _midnight(lo), "raw_hi": _midnight(hi + timedelta(days=1))}
    first, last = (
        session.execute(
            text(
                "SELECT min(current_received_at), max(current_received_at) FROM repair_record"
                " WHERE settle_date = ANY(:raw_days)"
            ),
            p,
        ).one()
        if days
        else (None, None)
    )
    return {**p, "rv_lo": first or p["raw_lo"], "rv_hi": last or p["raw_lo"]}


def refresh(session: Session) -> int:
    """Re-aggregate every marked day and its month; returns the number of days. One refresher at a
    time (a lock for this transaction): the worker of each app server may call it."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('pbox.stat_refresh'))"))
    days = sorted(set(session.execute(text("DELETE FROM stat_dirty RETURNING day")).scalars()))
    if not days:
        return 0
    months = sorted({_month(d) for d in days})
    p = {
        **raw_params(session, days),
        "scope": "%",
        "months": months,
        "m_lo": months[0],
        "m_hi": _next_month(months[-1]),
    }
    session.execute(text("SET LOCAL jit = off"))
    for agg in AGGREGATES:
        session.execute(text(f"DELETE FROM {agg.name}_day WHERE day = ANY(:raw_days)"), p)
        session.execute(text(f"INSERT INTO {agg.name}_day (day, {agg.columns}) {agg.source}"), p)
        session.execute(text(f"DELETE FROM {agg.name}_month WHERE month = ANY(:months)"), p)
        keys = ", ".join(agg.keys)
        merged = ", ".join(f"{how}({m})" for m, how in agg.measures)
        session.execute(
            text(
                f"INSERT INTO {agg.name}_month (month, {agg.columns})"
                f" SELECT date_trunc('month', day)::date AS m, {keys}, {merged} FROM {agg.name}_day"
                " WHERE day >= :m_lo AND day < :m_hi AND date_trunc('month', day)::date = ANY(:months)"
                f" GROUP BY m, {keys}"
            ),
            p,
        )
    return len(days)


@dataclass(frozen=True)
class Plan:
    """Where each day of a period is read from."""

    months: list[date]  # whole calendar months without a marked day: the month tables
    days: list[date]  # other days not marked: the day tables
    raw: list[date]  # marked days: the raw tables
    params: dict[str, Any]

    @classmethod
    def of(cls, session: Session, start: date, end: date, dirty: set[date], scope: str) -> "Plan":
        """`scope`: a LIKE pattern of the region codes of the enterprises to read raw."""
        months, days, raw = [], [], []
        d = start
        while d <= end:
            nxt = _next_month(d)
            span = [d + timedelta(days=i) for i in range((min(nxt, end + timedelta(days=1)) - d).days)]
            whole = d.day == 1 and nxt - timedelta(days=1) <= end
            if whole and not dirty.intersection(span):
                months.append(d)
            else:
                for x in span:
                    (raw if x in dirty else days).append(x)
            d = nxt
        params = {"months": months, "days": days, "scope": scope, **raw_params(session, raw)}
        return cls(months, days, raw, params)


def dirty_days(session: Session, start: date, end: date) -> set[date]:
    return set(
        session.execute(
            text("SELECT DISTINCT day FROM stat_dirty WHERE day BETWEEN :s AND :e"), {"s": start, "e": end}
        ).scalars()
    )


def rows(agg: Aggregate, plan: Plan) -> tuple[str, dict[str, Any]]:
    """A FROM item of `agg`'s rows (its keys and measures, not yet combined) over the plan's days,
    with its parameters; callers filter and group it."""
    parts = [
        f"SELECT {agg.columns} FROM {agg.name}_month WHERE month = ANY(:months)",
        f"SELECT {agg.columns} FROM {agg.name}_day WHERE day = ANY(:days)",
    ]
    if plan.raw:
        names = ", ".join(("day", *agg.columns.split(", ")))
        parts.append(f"SELECT {agg.columns} FROM ({agg.source}) raw({names})")
    sql = "(" + " UNION ALL ".join(parts) + ")"
    return sql, plan.params
