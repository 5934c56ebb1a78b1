"""Statistics for a regulator's region over a period: repair volume by region, enterprise, brand and
repair type; parts usage; ratings; complaints; upload coverage; and licence coverage (enterprises
uploading ÷ enterprises on the licence roster, by 经营类别 and by region).

Everything but complaints is read from the pre-aggregated tables of app.services.aggregates (whole
months from the month tables, other days from the day tables, days not yet re-aggregated by the
worker from the raw tables), one statement per aggregate. Complaints are few (about one per
thousand repairs) and whether one is overdue depends on the time of asking: they are counted raw.

Periods are calendar days in Beijing time, both ends included. Volumes count live repairs (latest
version, not withdrawn) by settlement date; ratings and complaints count by the day they were made;
upload coverage counts versions received (uploads and corrections) by the day of receipt.
SQL text is assembled only from the constant fragments below; every value is a bound parameter.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db.models import Enterprise, LicenceRoster
from app.domain.clock import CHINA
from app.domain.errors import AppError
from app.domain.reference import code_tables, regions
from app.domain.roster import licence_in_force
from app.security.rbac import Perm, Principal, region_prefix, require, require_region
from app.services import aggregates
from app.services.complaints import STATUS_NAMES
from app.services.directory import custom_plans
from app.services.ratings import DIMENSIONS

TOP = 50  # rows kept of the long tables (enterprises, parts, stopped uploaders)
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Column:
    key: str
    title: str


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: tuple[Column, ...]
    chart: tuple[str, str] | None = None  # (label column, value column) for the bar chart


def _c(*pairs: str) -> tuple[Column, ...]:
    return tuple(Column(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))


TABLES: tuple[Table, ...] = (
    Table(
        "by_region",
        "维修量（按地区）",
        _c(
            "region_code",
            "区划代码",
            "region_name",
            "地区",
            "records",
            "维修次数",
            "amount",
            "维修金额（元）",
        ),
        ("region_name", "records"),
    ),
    Table(
        "by_enterprise",
        f"维修量（按企业，前 {TOP} 名）",
        _c("uscc", "统一社会信用代码", "name", "企业名称", "records", "维修次数", "amount", "维修金额（元）"),
        ("name", "records"),
    ),
    Table("by_brand", "维修量（按品牌）", _c("brand", "品牌", "records", "维修次数"), ("brand", "records")),
    Table(
        "by_repair_type",
        "维修量（按维修类别）",
        _c("repair_type", "类别代码", "repair_type_name", "维修类别", "records", "维修次数"),
        ("repair_type_name", "records"),
    ),
    Table(
        "parts",
        f"配件使用（按用量，前 {TOP} 名）",
        _c("name", "配件名称", "kind_name", "配件属性", "lines", "使用次数", "quantity", "数量"),
        ("name", "quantity"),
    ),
    Table(
        "ratings",
        "评价（各项平均分与分布）",
        _c(
            "dimension_name",
            "评价项目",
            "count",
            "评价数",
            "average",
            "平均分",
            "s1",
            "1 分",
            "s2",
            "2 分",
            "s3",
            "3 分",
            "s4",
            "4 分",
            "s5",
            "5 分",
        ),
        ("dimension_name", "average"),
    ),
    Table(
        "complaints",
        "投诉（按状态）",
        _c("status_name", "状态", "count", "件数", "overdue", "其中超期"),
        ("status_name", "count"),
    ),
    Table(
        "coverage",
        f"上传情况（已停止上传的企业，前 {TOP} 家）",
        _c("uscc", "统一社会信用代码", "name", "企业名称", "last_upload", "最近上传日期"),
    ),
    Table(
        "coverage_by_category",
        "接入覆盖率（按经营类别）",
        _c("category", "类别代码", "category_name", "经营类别", "licensed", "许可企业数", "uploading",
           "本期上传企业数", "coverage", "覆盖率（%）", "target", "目标", "met", "是否达标"),
        ("category_name", "coverage"),
    ),
    Table(
        "coverage_by_region",
        "接入覆盖率（按地区）",
        _c("region_code", "区划代码", "region_name", "地区", "licensed", "许可企业数", "uploading",
           "本期上传企业数", "coverage", "覆盖率（%）"),
        ("region_name", "coverage"),
    ),
)  # fmt: skip
# The guide's coverage targets by 经营类别: 一类 at least 90 %, 二类 more than 80 %.
COVERAGE_TARGETS: dict[str, tuple[str, Callable[[Decimal], bool]]] = {
    "1": ("≥ 90%", lambda pct: pct >= 90),
    "2": ("> 80%", lambda pct: pct > 80),
}
TABLE_KEYS = {t.key: t for t in TABLES}


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def check(self) -> None:
        if self.start > self.end or (self.end - self.start).days > MAX_DAYS:
            raise AppError("PERIOD_INVALID", 422)
        if self.start.year < 2000 or self.end.year > 2100:  # and the comparison period stays a date
            raise AppError("PERIOD_INVALID", 422)

    def before(self) -> "Period":
        """The period of the same length just before this one."""
        days = (self.end - self.start).days + 1
        return Period(self.start - timedelta(days=days), self.start - timedelta(days=1))


def scope_of(who: Principal, region: str | None) -> str:
    require(who, Perm.STATS_REGION)
    assert who.region_code is not None
    region = region or who.region_code
    if region not in regions():
        raise AppError("REGION_UNKNOWN", 422)
    require_region(who, region)
    return region


def _group_of(scope: str, region_code: str) -> str:
    """Break a province down by city, a city by county; a county is its own single row."""
    return region_code[:4] + "00" if scope.endswith("0000") else region_code


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time.min, CHINA)


def _money(v: Decimal | None) -> str:
    return f"{(v or Decimal(0)):.2f}"


def _days(start: date, end: date) -> set[date]:
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


def _pct(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(100 * part) / whole).quantize(Decimal("0.1"))


def licence_coverage(
    session: Session, scope: str, period: Period, uploaded_usccs: set[str]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Coverage = enterprises that uploaded in the period ÷ enterprises licensed (the roster's rows in
    force at the period's end), over the scope, by 经营类别 (against the guide's targets) and by region."""
    licensed = [
        (uscc, category, region)
        for uscc, category, region, status, until in session.execute(
            select(
                LicenceRoster.uscc,
                LicenceRoster.category,
                LicenceRoster.region_code,
                LicenceRoster.licence_status,
                LicenceRoster.valid_until,
            ).where(LicenceRoster.region_code.startswith(region_prefix(scope)))
        )
        if licence_in_force(status, until, period.end)
    ]
    categories = code_tables()["enterprise_category"]
    names = regions()

    def tally(key: Callable[[tuple[str, str, str]], str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for row in licensed:
            n = out.setdefault(key(row), [0, 0])
            n[0] += 1
            n[1] += row[0] in uploaded_usccs
        return out

    by_category = []
    for cat, (n, up) in sorted(tally(lambda r: r[1] or "").items()):
        pct = _pct(up, n)
        target = COVERAGE_TARGETS.get(cat)
        by_category.append({
            "category": cat, "category_name": categories.get(cat, "未填写"), "licensed": n, "uploading": up,
            "coverage": None if pct is None else str(pct), "target": target[0] if target else None,
            "met": None if target is None or pct is None else ("是" if target[1](pct) else "否"),
        })  # fmt: skip
    by_region = [
        {"region_code": g, "region_name": names.get(g, g), "licensed": n, "uploading": up,
         "coverage": None if (pct := _pct(up, n)) is None else str(pct)}
        for g, (n, up) in sorted(tally(lambda r: _group_of(scope, r[2])).items())
    ]  # fmt: skip
    total_up = sum(1 for r in licensed if r[0] in uploaded_usccs)
    pct = _pct(total_up, len(licensed))
    summary = {
        "licensed": len(licensed),
        "uploading": total_up,
        "coverage": None if pct is None else str(pct),
    }
    return summary, by_category, by_region


Firm = tuple[str, str, str, str]  # uscc, name, region code, status


@dataclass
class _Reader:
    """Reads one aggregate over a plan (pre-aggregated days plus the raw ones not yet re-aggregated)."""

    session: Session
    params: dict[str, Any]
    plan: aggregates.Plan

    def __call__(self, agg: aggregates.Aggregate, sql: str, plan: aggregates.Plan | None = None) -> list[Any]:
        rows, params = aggregates.rows(agg, self.plan if plan is None else plan)
        return self.session.execute(text(sql.format(rows=rows)), {**self.params, **params}).all()


def compute(
    session: Session, who: Principal, period: Period, region: str | None = None, raw: bool = False
) -> dict[str, Any]:
    """The statistics of `period`, read from the pre-aggregated tables (app.services.aggregates)
    except for days not yet re-aggregated; `raw` reads every day from the raw tables instead (the
    benchmark's baseline, and a check in the tests)."""
    period.check()
    scope = scope_of(who, region)
    before = period.before()
    p: dict[str, Any] = {
        "prefix": region_prefix(scope) + "%",
        # the same days as instants, so indexes on timestamps serve the ranges
        "t0": _midnight(period.start),
        "t1": _midnight(period.end + timedelta(days=1)),
    }
    names = regions()
    # a generic plan cannot tell a county's enterprises from a province's: plan for these parameters
    custom_plans(session)
    firms = _firms(session, scope)
    p["ents"] = list(firms)
    dirty = (
        _days(before.start, period.end) if raw else aggregates.dirty_days(session, before.start, period.end)
    )
    read = _Reader(session, p, aggregates.Plan.of(session, period.start, period.end, dirty, p["prefix"]))

    by_ent, by_region, by_enterprise = _volume(read, scope, firms, names)
    by_brand, by_repair_type = _kinds(read)
    parts = _parts(read)
    ratings = _ratings(read)
    complaints, closed_secs = _complaints(session, p)
    uploading = _last_uploads(read)
    before_plan = aggregates.Plan.of(session, before.start, before.end, dirty, p["prefix"])
    uploaded_before = _last_uploads(read, before_plan)
    active = [e for e, f in firms.items() if f[3] == "active"]
    stopped = _stopped(firms, active, uploading, uploaded_before)
    coverage, coverage_by_category, coverage_by_region = licence_coverage(
        session, scope, period, {firms[e][0] for e in uploading}
    )
    return {
        "scope": {"region_code": scope, "region_name": names.get(scope, scope)},
        "licence_coverage": coverage,
        "period": {"start": period.start, "end": period.end},
        "summary": {
            "records": sum(n for n, _ in by_ent.values()),
            "amount": _money(sum((a for _, a in by_ent.values()), Decimal(0))),
            "enterprises_with_records": len(by_ent),
            "ratings": ratings[0]["count"],
            "complaints": sum(r["count"] for r in complaints),
            "complaints_overdue": sum(r["overdue"] for r in complaints),
            "complaint_avg_handling_hours": None
            if closed_secs is None
            else round(float(closed_secs) / 3600, 1),
            "enterprises": len(active),
            "enterprises_uploading": sum(1 for e in active if e in uploading),
            "enterprises_stopped": len(stopped),
        },
        "tables": {
            "by_region": by_region,
            "by_enterprise": by_enterprise,
            "by_brand": by_brand,
            "by_repair_type": by_repair_type,
            "parts": parts,
            "ratings": ratings,
            "complaints": complaints,
            "coverage": stopped[:TOP],
            "coverage_by_category": coverage_by_category,
            "coverage_by_region": coverage_by_region,
        },
    }


def _firms(session: Session, scope: str) -> dict[int, Firm]:
    """The enterprises of the scope's region, by id."""
    return {
        i: (uscc, name, code, status)
        for i, uscc, name, code, status in session.execute(
            select(
                Enterprise.id, Enterprise.uscc, Enterprise.name, Enterprise.region_code, Enterprise.status
            ).where(Enterprise.region_code.startswith(region_prefix(scope)))
        )
    }


def _volume(
    read: _Reader, scope: str, firms: dict[int, Firm], names: dict[str, str]
) -> tuple[dict[int, tuple[int, Decimal]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Records and amounts per enterprise, summed per region below the scope, and the top enterprises."""
    by_ent = {
        ent: (n, amount)
        for ent, n, amount in read(
            aggregates.VOLUME,
            "SELECT enterprise_id, sum(records)::bigint, sum(amount) FROM {rows} a"
            " JOIN enterprise e ON e.id = a.enterprise_id WHERE e.region_code LIKE :prefix"
            " GROUP BY enterprise_id",
        )
    }
    regions_of: dict[str, list[tuple[int, Decimal]]] = {}
    for ent, row in by_ent.items():
        regions_of.setdefault(_group_of(scope, firms[ent][2]), []).append(row)
    by_region = [
        {
            "region_code": g,
            "region_name": names.get(g, g),
            "records": sum(r[0] for r in rows),
            "amount": _money(sum((r[1] for r in rows), Decimal(0))),
        }
        for g, rows in sorted(regions_of.items())
    ]
    by_enterprise = [
        {"uscc": firms[e][0], "name": firms[e][1], "records": n, "amount": _money(a)}
        for e, (n, a) in sorted(by_ent.items(), key=lambda r: (-r[1][0], firms[r[0]][0]))[:TOP]
    ]
    return by_ent, by_region, by_enterprise


def _kinds(read: _Reader) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records per brand and per repair type."""
    repair_types = code_tables()["repair_type"]
    kinds = read(
        aggregates.KIND,
        "SELECT brand, repair_type, sum(records)::bigint FROM {rows} a WHERE region_code LIKE :prefix"
        " GROUP BY brand, repair_type",
    )
    brands: dict[str, int] = {}
    types: dict[str | None, int] = {}
    for brand, rtype, n in kinds:
        brands[brand] = brands.get(brand, 0) + n
        types[rtype] = types.get(rtype, 0) + n
    by_brand = [{"brand": b, "records": n} for b, n in sorted(brands.items(), key=lambda r: (-r[1], r[0]))]
    by_repair_type = [
        {"repair_type": t, "repair_type_name": repair_types.get(t or "", "未填写"), "records": n}
        for t, n in sorted(types.items(), key=lambda r: (r[0] is None, r[0] or ""))
    ]
    return by_brand, by_repair_type


def _parts(read: _Reader) -> list[dict[str, Any]]:
    """The parts used most, by quantity."""
    part_kinds = code_tables()["part_kind"]
    return [
        {"name": name, "kind": kind, "kind_name": part_kinds.get(kind or "", "未填写"), "lines": n,
         "quantity": f"{qty.normalize():f}" if qty is not None else "0"}
        for name, kind, n, qty in read(
            aggregates.PART,
            "SELECT name, kind, sum(lines)::bigint AS n, sum(quantity) AS qty FROM {rows} a"  # noqa: S608
            " WHERE region_code LIKE :prefix GROUP BY name, kind"
            f" ORDER BY qty DESC NULLS LAST, name, kind LIMIT {TOP}",
        )
    ]  # fmt: skip


def _ratings(read: _Reader) -> list[dict[str, Any]]:
    """Per rating dimension: how many, the average and the distribution of scores 1–5."""
    scores = {
        (d, s): n
        for d, s, n in read(
            aggregates.RATING,
            "SELECT dimension, score, sum(n)::bigint FROM {rows} a WHERE region_code LIKE :prefix"
            " GROUP BY dimension, score",
        )
    }
    ratings = []
    for d, title in DIMENSIONS.items():
        dist = {s: scores.get((d, s), 0) for s in range(1, 6)}
        count = sum(dist.values())
        avg = Decimal(sum(s * n for s, n in dist.items())) / count if count else None
        ratings.append(
            {"dimension": d, "dimension_name": title, "count": count,
             "average": None if avg is None else f"{avg:.2f}", **{f"s{s}": dist[s] for s in range(1, 6)}}
        )  # fmt: skip
    return ratings


def _complaints(session: Session, p: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Complaints of the period per status (and how many overdue), and the mean seconds to close one."""
    complaint_rows = session.execute(
        text(
            "SELECT status, count(*), count(*) FILTER (WHERE status IN ('submitted', 'accepted', 'assigned')"
            " AND deadline_at < now()),"
            " avg(extract(epoch FROM closed_at - created_at)) FILTER (WHERE status = 'closed')"
            " FROM complaint WHERE created_at >= :t0 AND created_at < :t1"
            " AND region_code LIKE :prefix GROUP BY status"
        ),
        p,
    ).all()
    by_status = {s: (n, late, secs) for s, n, late, secs in complaint_rows}
    complaints = [
        {"status": s, "status_name": title, "count": by_status.get(s, (0,))[0],
         "overdue": by_status.get(s, (0, 0))[1]}
        for s, title in STATUS_NAMES.items()
    ]  # fmt: skip
    return complaints, by_status.get("closed", (0, 0, None))[2]


def _last_uploads(read: _Reader, plan: aggregates.Plan | None = None) -> dict[int, date]:
    """Upload coverage: each enterprise's last day of receipt within the plan's days."""
    return dict(
        read(
            aggregates.UPLOAD,
            "SELECT enterprise_id, max(last_day) FROM {rows} a"
            " JOIN enterprise e ON e.id = a.enterprise_id WHERE e.region_code LIKE :prefix"
            " GROUP BY enterprise_id",
            plan,
        )
    )


def _stopped(
    firms: dict[int, Firm], active: list[int], uploading: dict[int, date], uploaded_before: dict[int, date]
) -> list[dict[str, Any]]:
    """Active enterprises that uploaded in the period before and not in this one, latest first."""
    return [
        {"uscc": firms[e][0], "name": firms[e][1], "last_upload": uploaded_before[e]}
        for e in sorted(
            (e for e in active if e in uploaded_before and e not in uploading),
            key=lambda e: (-uploaded_before[e].toordinal(), firms[e][0]),
        )
    ]
