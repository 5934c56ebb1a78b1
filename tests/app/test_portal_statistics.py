"""Every figure of the regulator statistics (API, page, CSV, XLSX) against an independent computation.

The data are generated here, then aggregated by the worker's refresh (so the figures come from the
pre-aggregated tables): shops in four counties of 苏州 upload repairs over 120 days (some
corrected, some withdrawn), ratings and complaints are written with chosen dates and states, and one
shop stops uploading. The independent side reads raw rows with its own SQL (latest version by
DISTINCT ON, not through the head pointer) and aggregates them in Python.
"""

import csv
import html
import io
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.db.session import Database
from app.domain.clock import CHINA, today_in_china
from app.domain.reference import code_tables, regions
from app.security.rbac import Principal, Role
from app.services import statistics
from app.services.exports import sheet_title
from app.services.ratings import DIMENSIONS
from app.services.statistics import TABLES
from app.worker import refresh_statistics
from tests.app.conftest import Shop, regulator
from tests.app.test_portal_pages import distribution_bars
from tests.support.samples import make_record, make_vin

REG = "/api/v1/regulator"
COUNTIES = ["320505", "320506", "320507", "320581"]
BRANDS = ["大众", "丰田", "本田", "比亚迪", None]
PARTS = [("机油", "1"), ("机滤", "2"), ("刹车片", "2"), ("火花塞", "1"), ("轮胎", "3")]
STATUSES = ["submitted", "accepted", "assigned", "responded", "closed"]


def record(rng: random.Random, no: str, vin: str, settle: date) -> dict:
    rec = make_record(no, vin, settle=settle, items=rng.randint(0, 2), parts=0)
    rec["vehicle"]["brand"] = rng.choice(BRANDS)
    rec["repair_type"] = rng.choice(["10", "31", "32", "40", "60"])
    parts = []
    for name, kind in rng.sample(PARTS, rng.randint(0, 3)):
        parts.append(
            {
                "name": name,
                "code": "P1",
                "quantity": str(rng.randint(1, 4)),
                "unit_price": "12.50",
                "kind": kind,
            }
        )
    rec["parts"] = parts
    labour = sum(Decimal(i["fee"]) for i in rec["items"])
    part_total = sum(Decimal(p["quantity"]) * Decimal(p["unit_price"]) for p in parts)
    rec["totals"] = {
        "labour": str(labour),
        "parts": str(part_total),
        "other": "10.00",
        "total": str(labour + part_total + 10),
    }
    return rec


@pytest.fixture(scope="module")
def worker_db(database_url):
    """The worker's database handle: the runtime role, as app-worker runs."""
    db = Database(database_url, pool_size=1)
    yield db
    db.dispose()


def dirty_days(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM stat_dirty")).scalar_one()


@pytest.fixture(scope="module")
def generated(client, engine, worker_db):
    rng = random.Random(8)
    today = today_in_china()
    shops = [Shop(client, region_code=COUNTIES[i % 4], name=f"统计测试汽修{i}") for i in range(7)]
    vins = [make_vin(rng) for _ in range(40)]
    for i, shop in enumerate(shops):
        recs = [
            record(rng, f"S{i}-{n}", rng.choice(vins), today - timedelta(days=rng.randint(0, 119)))
            for n in range(25)
        ]
        assert shop.batch(recs).json()["accepted"] == 25
        for rec in rng.sample(recs, 4):  # corrections: the latest version counts
            fixed = record(
                rng, rec["settlement_no"], rec["vehicle"]["vin"], date.fromisoformat(rec["settle_date"])
            )
            assert shop.upload(fixed).json()["outcome"] == "updated"
        for rec in rng.sample(recs, 2):
            found = client.get(
                "/api/v1/collection/records",
                params={"settlement_no": rec["settlement_no"]},
                headers=shop.headers,
            )
            client.post(
                f"/api/v1/collection/records/{found.json()['record_id']}/withdraw",
                json={"reason": "重复"},
                headers=shop.headers,
            )
    now = datetime.now(UTC)
    with engine.begin() as conn:
        # the last shop stopped uploading 40 days ago: its uploads move back in time
        last = shops[-1].enterprise_id
        conn.execute(
            sa.text(
                "UPDATE record_version SET received_at = received_at - interval '40 days'"
                " WHERE enterprise_id = :e"
            ),
            {"e": last},
        )
        conn.execute(
            sa.text(
                "UPDATE repair_record SET current_received_at = current_received_at - interval '40 days'"
                " WHERE enterprise_id = :e"
            ),
            {"e": last},
        )
        heads = conn.execute(
            sa.text(
                "SELECT id, enterprise_id FROM repair_record"
                " WHERE enterprise_id = ANY(:ids) AND status = 'active'"
            ),
            {"ids": [s.enterprise_id for s in shops]},
        ).all()
        for rid, ent in rng.sample(heads, 60):
            scores = {d: rng.randint(1, 5) for d in DIMENSIONS}
            conn.execute(
                sa.text(
                    "INSERT INTO rating (record_id, enterprise_id, owner_id, attitude, quality, efficiency,"
                    " transparency, environment, created_at)"
                    " VALUES (:r, :e, 1, :attitude, :quality, :efficiency, :transparency,"
                    " :environment, :at)"
                ),
                {
                    "r": rid,
                    "e": ent,
                    "at": now - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23)),
                    **scores,
                },
            )
        region_of = {s.enterprise_id: s.profile["region_code"] for s in shops}
        for rid, ent in rng.sample(heads, 30):
            status = rng.choice(STATUSES)
            created = now - timedelta(days=rng.randint(0, 50), hours=rng.randint(0, 23))
            conn.execute(
                sa.text(
                    "INSERT INTO complaint (record_id, enterprise_id, owner_id, region_code, title, content,"
                    " status, created_at, deadline_at, closed_at)"
                    " VALUES (:r, :e, 1, :reg, '统计', '内容', :st, :c, :d, :closed)"
                ),
                {
                    "r": rid, "e": ent, "reg": region_of[ent], "st": status, "c": created,
                    "d": created + timedelta(days=15),
                    "closed": created + timedelta(hours=rng.randint(1, 300)) if status == "closed" else None,
                },
            )  # fmt: skip
    assert dirty_days(engine) > 0  # every write above marked its days
    assert refresh_statistics(worker_db) > 0
    assert dirty_days(engine) == 0
    return shops


def independent(engine, scope: str, start: date, end: date) -> dict:
    prefix = scope[:2] if scope.endswith("0000") else scope[:4] if scope.endswith("00") else scope
    with engine.connect() as conn:
        ents = {
            r.id: r
            for r in conn.execute(sa.text("SELECT id, uscc, name, region_code, status FROM enterprise"))
        }
        brands = dict(conn.execute(sa.text("SELECT vin, brand FROM vehicle")).all())
        latest = conn.execute(
            sa.text(
                "SELECT DISTINCT ON (record_id) record_id, kind, enterprise_id, vin, settle_date,"
                " repair_type, total, parts"
                " FROM record_version ORDER BY record_id, version DESC"
            )
        ).all()
        received = conn.execute(sa.text("SELECT enterprise_id, received_at FROM record_version")).all()
        rating_rows = conn.execute(sa.text("SELECT * FROM rating")).mappings().all()
        complaint_rows = conn.execute(sa.text("SELECT *, now() AS db_now FROM complaint")).mappings().all()
    in_scope = {i for i, e in ents.items() if e.region_code.startswith(prefix)}
    live = [
        v
        for v in latest
        if v.kind == "upload" and v.enterprise_id in in_scope and start <= v.settle_date <= end
    ]
    money = lambda x: f"{x:.2f}"  # noqa: E731
    group = (lambda c: c[:4] + "00") if scope.endswith("0000") else (lambda c: c)

    def count_amount(key):
        acc = defaultdict(lambda: [0, Decimal(0)])
        for v in live:
            a = acc[key(v)]
            a[0] += 1
            a[1] += v.total or 0
        return acc

    by_region = sorted(
        ({"region_code": k, "region_name": regions().get(k, k), "records": n, "amount": money(a)}
         for k, (n, a) in count_amount(lambda v: group(ents[v.enterprise_id].region_code)).items()),
        key=lambda r: r["region_code"],
    )  # fmt: skip
    by_enterprise = sorted(
        ({"uscc": ents[k].uscc, "name": ents[k].name, "records": n, "amount": money(a)}
         for k, (n, a) in count_amount(lambda v: v.enterprise_id).items()),
        key=lambda r: (-r["records"], r["uscc"]),
    )[:50]  # fmt: skip
    by_brand = Counter(brands.get(v.vin) or "未知" for v in live)
    types = code_tables()["repair_type"]
    by_type = Counter(v.repair_type for v in live)
    part_lines, part_qty = Counter(), defaultdict(Decimal)
    for v in live:
        for p in v.parts or []:
            part_lines[(p["name"], p.get("kind"))] += 1
            part_qty[(p["name"], p.get("kind"))] += Decimal(p["quantity"])
    kinds = code_tables()["part_kind"]

    def day(ts: datetime) -> date:
        return ts.astimezone(CHINA).date()

    rated = [
        r for r in rating_rows if r["enterprise_id"] in in_scope and start <= day(r["created_at"]) <= end
    ]
    ratings = []
    for d, title in DIMENSIONS.items():
        vals = [r[d] for r in rated]
        avg = None if not vals else f"{Decimal(sum(vals)) / Decimal(len(vals)):.2f}"
        dist = Counter(vals)
        ratings.append({"dimension": d, "dimension_name": title, "count": len(vals), "average": avg,
                        **{f"s{s}": dist.get(s, 0) for s in range(1, 6)}})  # fmt: skip
    comp = [
        c
        for c in complaint_rows
        if c["region_code"].startswith(prefix) and start <= day(c["created_at"]) <= end
    ]
    open_ = {"submitted", "accepted", "assigned"}
    late = [c for c in comp if c["status"] in open_ and c["deadline_at"] < c["db_now"]]
    complaints = [
        {
            "status": s,
            "count": sum(1 for c in comp if c["status"] == s),
            "overdue": sum(1 for c in late if c["status"] == s),
        }
        for s in STATUSES
    ]
    closed = [(c["closed_at"] - c["created_at"]).total_seconds() for c in comp if c["status"] == "closed"]
    days = (end - start).days + 1
    bstart, bend = start - timedelta(days=days), start - timedelta(days=1)
    got_now, got_before, last = set(), set(), {}
    for ent, at in received:
        d = day(at)
        if bstart <= d <= end:
            last[ent] = max(last.get(ent, d), d)
        if start <= d <= end:
            got_now.add(ent)
        if bstart <= d <= bend:
            got_before.add(ent)
    active = {i for i in in_scope if ents[i].status == "active"}
    stopped = sorted(
        ((last[i], ents[i].uscc) for i in active if i in got_before and i not in got_now),
        key=lambda t: (-t[0].toordinal(), t[1]),
    )
    return {
        "summary": {
            "records": len(live),
            "amount": money(sum((v.total or 0 for v in live), Decimal(0))),
            "enterprises_with_records": len({v.enterprise_id for v in live}),
            "ratings": len(rated),
            "complaints": len(comp),
            "complaints_overdue": sum(c["overdue"] for c in complaints),
            "complaint_avg_handling_hours": round(sum(closed) / len(closed) / 3600, 1) if closed else None,
            "enterprises": len(active),
            "enterprises_uploading": len(active & got_now),
            "enterprises_stopped": len(stopped),
        },
        "by_region": by_region,
        "by_enterprise": by_enterprise,
        "by_brand": by_brand,
        "by_repair_type": {(t, types.get(t or "", "未填写")): n for t, n in by_type.items()},
        "parts": {
            (n, k, kinds.get(k or "", "未填写")): (part_lines[(n, k)], f"{part_qty[(n, k)].normalize():f}")
            for n, k in part_lines
        },
        "ratings": ratings,
        "complaints": complaints,
        "coverage": [(u, d) for d, u in stopped],
    }


def check(stats: dict, want: dict) -> None:
    t = stats["tables"]
    assert stats["summary"] == want["summary"]
    assert t["by_region"] == want["by_region"]
    assert t["by_enterprise"] == want["by_enterprise"]
    assert {r["brand"]: r["records"] for r in t["by_brand"]} == want["by_brand"]
    assert [r["records"] for r in t["by_brand"]] == sorted(
        (r["records"] for r in t["by_brand"]), reverse=True
    )
    assert {(r["repair_type"], r["repair_type_name"]): r["records"] for r in t["by_repair_type"]} == want[
        "by_repair_type"
    ]
    assert {(r["name"], r["kind"], r["kind_name"]): (r["lines"], r["quantity"]) for r in t["parts"]} == want[
        "parts"
    ]
    assert t["ratings"] == want["ratings"]
    assert [{k: r[k] for k in ("status", "count", "overdue")} for r in t["complaints"]] == want["complaints"]
    assert [(r["uscc"], r["last_upload"]) for r in t["coverage"]] == want["coverage"]


def as_text(v) -> str:
    return "" if v is None else str(v)


@pytest.mark.parametrize("scope", ["320500", "320000"])
def test_statistics_match_an_independent_computation(client, admins, engine, generated, scope):
    reg = regulator(client, admins, scope)
    today = today_in_china()
    for start, end in ((today - timedelta(days=29), today), (today - timedelta(days=119), today)):
        r = client.get(f"{REG}/statistics", params={"start": start, "end": end}, headers=reg.headers)
        assert r.status_code == 200, r.text
        stats = r.json()
        want = independent(engine, scope, start, end)
        # JSON turns dates into strings: compare in that form
        want["coverage"] = [(u, d.isoformat()) for u, d in want["coverage"]]
        check(stats, want)
    if scope == "320500":
        assert stats["summary"]["records"] > 100 and stats["summary"]["enterprises_stopped"] == 0
        short = client.get(
            f"{REG}/statistics",
            params={"start": today - timedelta(days=29), "end": today},
            headers=reg.headers,
        ).json()
        assert [r["uscc"] for r in short["tables"]["coverage"]] == [generated[-1].profile["uscc"]]


def test_statistics_page_and_exports_show_the_same_figures(client, admins, engine, generated):
    reg = regulator(client, admins, "320500")
    today = today_in_china()
    params = {"start": (today - timedelta(days=59)).isoformat(), "end": today.isoformat()}
    stats = client.get(f"{REG}/statistics", params=params, headers=reg.headers).json()
    web = TestClient(client.app)
    assert (
        web.post(
            "/staff/login",
            data={"username": reg.username, "password": reg.password, "totp_code": reg.code(1)},
        ).status_code
        == 200
    )
    page = web.get("/regulator/statistics", params=params).text
    for key, value in stats["summary"].items():
        shown = re.search(rf'data-key="{key}">([^<]*)<', page).group(1)
        assert shown == ("—" if value is None else str(value)), key
    for t in TABLES:
        body = re.search(rf'<table id="table-{t.key}">(.*?)</table>', page, re.S).group(1)
        rows = [
            dict(re.findall(r'<td data-key="(\w+)">(.*?)</td>', tr, re.S))
            for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]
        ]
        rows = [r for r in rows if r]
        want = [{c.key: as_text(row.get(c.key)) for c in t.columns} for row in stats["tables"][t.key]]
        assert [{k: html.unescape(v) for k, v in r.items()} for r in rows] == want, t.key
        if t.chart and want:
            assert f'aria-label="{t.title}"' in html.unescape(page)
    # the rating distribution chart: one stacked bar per dimension, its segments the table's counts
    assert distribution_bars(page, "评分分布") == {
        r["dimension_name"]: {s: r[f"s{s}"] for s in range(1, 6)}
        for r in stats["tables"]["ratings"]
        if r["count"]
    }
    # exports: every table in the workbook, one as CSV; each export audited
    x = web.get("/regulator/statistics/export", params={**params, "format": "xlsx"})
    wb = load_workbook(io.BytesIO(x.content))
    for t in TABLES:
        sheet = wb[sheet_title(t)]
        got = [[as_text(c) for c in row] for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert got == [[as_text(r.get(c.key)) for c in t.columns] for r in stats["tables"][t.key]], t.key
    c = client.get(
        f"{REG}/statistics/export",
        params={**params, "format": "csv", "table": "by_enterprise"},
        headers=reg.headers,
    )
    lines = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert lines[0] == ["统一社会信用代码", "企业名称", "维修次数", "维修金额（元）"]
    assert lines[1:] == [
        [r["uscc"], r["name"], str(r["records"]), r["amount"]] for r in stats["tables"]["by_enterprise"]
    ]
    with engine.connect() as conn:
        exports = (
            conn.execute(
                sa.text(
                    "SELECT detail->>'format' FROM audit.event"
                    " WHERE action = 'stats.export' AND actor_id = :a ORDER BY seq"
                ),
                {"a": str(reg.staff_id)},
            )
            .scalars()
            .all()
        )
    assert exports == ["xlsx", "csv"]


def test_a_region_without_enterprises_has_empty_statistics(client, admins):
    reg = regulator(client, admins, "320381")  # 新沂市: no test creates an enterprise there
    today = today_in_china()
    stats = client.get(f"{REG}/statistics", params={"start": today, "end": today}, headers=reg.headers).json()
    assert stats["summary"]["records"] == 0 and stats["summary"]["enterprises"] == 0
    assert stats["tables"]["by_region"] == [] and stats["tables"]["ratings"][0]["average"] is None


def test_changes_after_the_aggregation_show_once_refreshed(client, admins, engine, worker_db, generated):
    """A new upload, a correction, a withdrawal and a rating after the aggregates were built: exact at
    once (their days are read raw until re-aggregated), in the aggregate tables once the worker's
    refresh ran, and the aggregated figures equal those computed from the raw tables alone."""
    reg = regulator(client, admins, "320500")
    today = today_in_china()
    params = {"start": today - timedelta(days=119), "end": today}
    refresh_statistics(worker_db)
    shop = generated[0]
    rng = random.Random(88)
    new = record(rng, "LATE-1", make_vin(rng), today - timedelta(days=3))
    assert shop.upload(new).json()["outcome"] == "created"
    with engine.connect() as conn:
        (no1, vin1, settled1), (no2, *_) = conn.execute(
            sa.text(
                "SELECT settlement_no, vin, settle_date FROM repair_record"
                " WHERE enterprise_id = :e AND status = 'active' AND settlement_no LIKE 'S0-%'"
                " ORDER BY id LIMIT 2"
            ),
            {"e": shop.enterprise_id},
        ).all()
    assert shop.upload(record(rng, no1, vin1, settled1)).json()["outcome"] == "updated"  # a correction
    head = client.get("/api/v1/collection/records", params={"settlement_no": no2}, headers=shop.headers)
    client.post(
        f"/api/v1/collection/records/{head.json()['record_id']}/withdraw",
        json={"reason": "重复"},
        headers=shop.headers,
    )
    with engine.begin() as conn:
        rid = conn.execute(
            sa.text(
                "SELECT id FROM repair_record WHERE enterprise_id = :e AND status = 'active'"
                " AND id NOT IN (SELECT record_id FROM rating) ORDER BY id LIMIT 1"
            ),
            {"e": shop.enterprise_id},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO rating (record_id, enterprise_id, owner_id, attitude, quality, efficiency,"
                " transparency, environment) VALUES (:r, :e, 1, 1, 2, 3, 4, 5)"
            ),
            {"r": rid, "e": shop.enterprise_id},
        )

    def aggregated_records() -> int:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT sum(records) FROM stat_volume_day WHERE enterprise_id = :e"),
                {"e": shop.enterprise_id},
            ).scalar_one()

    def live_records() -> int:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT count(*) FROM repair_record WHERE enterprise_id = :e AND status = 'active'"),
                {"e": shop.enterprise_id},
            ).scalar_one()

    assert dirty_days(engine) > 0
    assert aggregated_records() == live_records()  # +1 upload -1 withdrawal: the total is unchanged
    stale = client.get(f"{REG}/statistics", params=params, headers=reg.headers).json()
    want = independent(engine, "320500", params["start"], params["end"])
    want["coverage"] = [(u, d.isoformat()) for u, d in want["coverage"]]
    check(stale, want)  # exact before the refresh: marked days come from the raw tables

    assert refresh_statistics(worker_db) > 0
    assert dirty_days(engine) == 0
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT v.day, v.records FROM stat_volume_day v WHERE v.enterprise_id = :e AND v.day = :d"
            ),
            {"e": shop.enterprise_id, "d": today - timedelta(days=3)},
        ).all()
        rated = conn.execute(
            sa.text(
                "SELECT sum(n) FROM stat_rating_day WHERE day = :d AND dimension = 'attitude' AND score = 1"
            ),
            {"d": today},
        ).scalar_one()
    assert rows and rows[0].records >= 1 and rated >= 1
    fresh = client.get(f"{REG}/statistics", params=params, headers=reg.headers).json()
    check(fresh, want)
    assert fresh["summary"]["ratings"] == stale["summary"]["ratings"]
    with worker_db.transaction() as s:
        who = Principal(Role.REGULATOR, reg.staff_id, region_code="320000")
        period = statistics.Period(params["start"], params["end"])
        assert statistics.compute(s, who, period) == statistics.compute(s, who, period, raw=True)
