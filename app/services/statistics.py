"""Statistics for a regulator's region over a period: repair volume by region, enterprise, brand and
repair type; parts usage; ratings; complaints; upload coverage. Each table is one SQL statement.

Periods are calendar days in Beijing time, both ends included. Volumes count live repairs (latest
version, not withdrawn) by settlement date; ratings and complaints count by the day they were made;
upload coverage counts versions received (uploads and corrections) by the day of receipt.
SQL text is assembled only from the constant fragments below; every value is a bound parameter.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db.models import Enterprise
from app.domain.clock import CHINA
from app.domain.errors import AppError
from app.domain.reference import code_tables, regions
from app.security.rbac import Perm, Principal, region_prefix, require, require_region
from app.services.complaints import STATUS_NAMES
from app.services.directory import custom_plans
from app.services.ratings import DIMENSIONS

PROBE_LIMIT = 20_000  # heads in scope and period up to which versions are probed by key
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
)
TABLE_KEYS = {t.key: t for t in TABLES}


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def check(self) -> None:
        if self.start > self.end or (self.end - self.start).days > MAX_DAYS:
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


# Live repairs of the scope's enterprises (:ents, their ids) settled in the period, at their latest
# version. Nothing else is joined here: conditions that repeat these (say on the version's own
# enterprise) make PostgreSQL expect a handful of rows and choose plans that take seconds. The one
# exception, the range of the heads' receipt times (:rmin, :rmax), lets the planner leave out the
# monthly partitions of versions that cannot match.
_LIVE = """
    FROM repair_record rr
    JOIN record_version rv ON rv.record_id = rr.id AND rv.version = rr.current_version
                          AND rv.received_at = rr.current_received_at
    WHERE rr.status = 'active' AND rr.settle_date BETWEEN :start AND :end AND rr.enterprise_id = ANY(:ents)
      AND rv.received_at BETWEEN :rmin AND :rmax
"""
_WITH_BRAND = "LEFT JOIN vehicle v ON v.vin = rr.vin"
_PART_LINES = ", jsonb_array_elements(coalesce(rv.parts, jsonb_build_array())) part"
# a day in Beijing time, for timestamps
_DAY = "(({0}) AT TIME ZONE 'Asia/Shanghai')::date"


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time.min, CHINA)


def _money(v: Decimal | None) -> str:
    return f"{(v or Decimal(0)):.2f}"


def compute(session: Session, who: Principal, period: Period, region: str | None = None) -> dict[str, Any]:
    period.check()
    scope = scope_of(who, region)
    before = period.before()
    p = {
        "start": period.start,
        "end": period.end,
        "prefix": region_prefix(scope) + "%",
        # the same days as instants, so indexes on timestamps serve the ranges
        "t0": _midnight(period.start),
        "t1": _midnight(period.end + timedelta(days=1)),
        "bstart": before.start,
        "bt0": _midnight(before.start),
    }
    names = regions()
    repair_types = code_tables()["repair_type"]
    part_kinds = code_tables()["part_kind"]
    q = session.execute
    # a generic plan cannot tell a county's enterprises from a province's: plan for these parameters
    custom_plans(session)
    firms = {
        i: (uscc, name, code)
        for i, uscc, name, code in q(
            select(Enterprise.id, Enterprise.uscc, Enterprise.name, Enterprise.region_code).where(
                Enterprise.region_code.startswith(region_prefix(scope))
            )
        )
    }
    p["ents"] = list(firms)
    # A county's or city's repairs are fetched fastest by probing each head's version by key, but
    # PostgreSQL prices a probe as if it touched every monthly partition (it prunes them only at run
    # time) and reads every version instead: 4.5 s instead of 0.4 s for a county's year at 1M repairs.
    # Below PROBE_LIMIT heads it is told to probe.
    heads = q(
        text(
            "SELECT count(*) FROM (SELECT 1 FROM repair_record WHERE enterprise_id = ANY(:ents)"
            " AND settle_date BETWEEN :start AND :end LIMIT :cap) h"
        ),
        {**p, "cap": PROBE_LIMIT + 1},
    ).scalar_one()
    probe = heads <= PROBE_LIMIT
    rmin, rmax = q(
        text(
            "SELECT min(current_received_at), max(current_received_at) FROM repair_record"
            " WHERE enterprise_id = ANY(:ents) AND settle_date BETWEEN :start AND :end"
        ),
        p,
    ).one()
    p["rmin"], p["rmax"] = (rmin, rmax) if rmin is not None else (p["t0"], p["t0"])
    if probe:
        q(text("SET LOCAL enable_hashjoin = off"))
        q(text("SET LOCAL enable_mergejoin = off"))

    # one pass over the period's live repairs for every volume table (GROUPING SETS) rather than one
    # join of records and versions per table; the bitmask says which set a row belongs to. Regions
    # are sums of their enterprises' rows.
    volumes = q(
        text(
            "SELECT GROUPING(ent, b, rtype) AS s, ent, b, rtype,"  # noqa: S608
            " count(*), sum(total), count(DISTINCT ent)"
            " FROM (SELECT rr.enterprise_id AS ent, coalesce(v.brand, '未知') AS b,"
            f" rv.repair_type AS rtype, rv.total {_LIVE.replace('WHERE', _WITH_BRAND + ' WHERE')}"
            ") live GROUP BY GROUPING SETS ((ent), (b), (rtype), ())"
        ),
        p,
    ).all()
    sets: dict[int, list[Any]] = {3: [], 5: [], 6: [], 7: []}
    for row in volumes:
        sets[row.s].append(row)
    total = sets[7][0] if sets[7] else None
    summary = (total[4], total[5], total[6]) if total else (0, None, 0)
    regions_of: dict[str, list[Any]] = {}
    for r in sets[3]:
        regions_of.setdefault(_group_of(scope, firms[r.ent][2]), []).append(r)
    by_region = [
        {
            "region_code": g,
            "region_name": names.get(g, g),
            "records": sum(r[4] for r in rows),
            "amount": _money(sum((r[5] for r in rows if r[5] is not None), Decimal(0))),
        }
        for g, rows in sorted(regions_of.items())
    ]
    by_enterprise = [
        {"uscc": firms[r.ent][0], "name": firms[r.ent][1], "records": r[4], "amount": _money(r[5])}
        for r in sorted(sets[3], key=lambda r: (-r[4], firms[r.ent][0]))[:TOP]
    ]
    by_brand = [{"brand": r.b, "records": r[4]} for r in sorted(sets[5], key=lambda r: (-r[4], r.b))]
    by_repair_type = [
        {
            "repair_type": r.rtype,
            "repair_type_name": repair_types.get(r.rtype or "", "未填写"),
            "records": r[4],
        }
        for r in sorted(sets[6], key=lambda r: (r.rtype is None, r.rtype or ""))
    ]
    parts = [
        {"name": name, "kind": kind, "kind_name": part_kinds.get(kind or "", "未填写"), "lines": n,
         "quantity": f"{qty.normalize():f}" if qty is not None else "0"}
        for name, kind, n, qty in q(
            text(
                "SELECT part->>'name' AS part_name, part->>'kind' AS part_kind, count(*) AS n,"
                " sum((part->>'quantity')::numeric) AS qty"
                f" {_LIVE.replace('WHERE', _PART_LINES + ' WHERE')}"
                " GROUP BY part_name, part_kind"
                f" ORDER BY qty DESC NULLS LAST, part_name, part_kind LIMIT {TOP}"
            ),
            p,
        )
    ]  # fmt: skip

    if probe:
        q(text("SET LOCAL enable_hashjoin = on"))
        q(text("SET LOCAL enable_mergejoin = on"))

    rating_cols = ", ".join(
        f"avg({d}), " + ", ".join(f"count(*) FILTER (WHERE {d} = {s})" for s in range(1, 6))
        for d in DIMENSIONS
    )
    rated = q(
        text(
            f"SELECT count(*), {rating_cols} FROM rating r JOIN enterprise e ON e.id = r.enterprise_id"  # noqa: S608
            " WHERE r.created_at >= :t0 AND r.created_at < :t1 AND r.enterprise_id = ANY(:ents)"
        ),
        p,
    ).one()
    ratings = []
    for i, (d, title) in enumerate(DIMENSIONS.items()):
        avg, *dist = rated[1 + 6 * i : 7 + 6 * i]
        ratings.append(
            {"dimension": d, "dimension_name": title, "count": rated[0],
             "average": None if avg is None else f"{avg:.2f}", **{f"s{s + 1}": dist[s] for s in range(5)}}
        )  # fmt: skip

    complaint_rows = q(
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
    closed_secs = by_status.get("closed", (0, 0, None))[2]

    coverage_sql = f"""
        WITH up AS (
            SELECT rv.enterprise_id, max({_DAY.format("rv.received_at")}) AS last,
                   bool_or({_DAY.format("rv.received_at")} BETWEEN :start AND :end) AS now_,
                   bool_or({_DAY.format("rv.received_at")} BETWEEN :bstart AND :start - 1) AS before_
            FROM record_version rv
            WHERE rv.received_at >= :bt0 AND rv.received_at < :t1
              AND rv.enterprise_id = ANY(:ents)
            GROUP BY rv.enterprise_id)
        SELECT e.uscc, e.name, up.last, coalesce(up.now_, false), coalesce(up.before_, false)
        FROM enterprise e LEFT JOIN up ON up.enterprise_id = e.id
        WHERE e.region_code LIKE :prefix AND e.status = 'active'
        ORDER BY up.last DESC NULLS LAST, e.uscc"""  # noqa: S608
    enterprises = q(text(coverage_sql), p).all()
    stopped = [
        {"uscc": uscc, "name": name, "last_upload": last}
        for uscc, name, last, in_period, in_before in enterprises
        if in_before and not in_period
    ]
    return {
        "scope": {"region_code": scope, "region_name": names.get(scope, scope)},
        "period": {"start": period.start, "end": period.end},
        "summary": {
            "records": summary[0],
            "amount": _money(summary[1]),
            "enterprises_with_records": summary[2],
            "ratings": rated[0],
            "complaints": sum(r["count"] for r in complaints),
            "complaints_overdue": sum(r["overdue"] for r in complaints),
            "complaint_avg_handling_hours": None
            if closed_secs is None
            else round(float(closed_secs) / 3600, 1),
            "enterprises": len(enterprises),
            "enterprises_uploading": sum(1 for row in enterprises if row[3]),
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
        },
    }
