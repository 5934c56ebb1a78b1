"""Portal page server time at scale, each page beside a same-run baseline.

    .venv/bin/python bench/portal_bench.py              # 1M repair records
    .venv/bin/python bench/portal_bench.py --scale 0.1  # 100k, a quick run

On its own throwaway PostgreSQL cluster and MinIO server (tests.support), the tables are filled
server-side (INSERT … SELECT generate_series): 2,000 enterprises over every county of 江苏, 1M repairs
(scaled) over the last 365 days with parts and totals, stored in the order of their days as uploads
arrive (a day's repairs are neighbours on disk, as in service), 200k cars with brands, one rating per ten
repairs, one complaint per thousand, 60 notices, and one owner's car with 20 repairs.

The fill bypasses the triggers that mark changed days (session_replication_role = replica); every
day is then marked and the worker's refresh aggregates them all, timed.

For each page it prints p50 and p95 of the time the app takes to answer (in-process ASGI, so no
network: server time), and beside it the same-run baseline: the service call behind the page, which
is the SQL work plus assembling its result, without HTTP and templates. The difference is what the
portal adds; the baseline is what the database costs at this size. Statistics pages have a second
baseline: the same figures computed from the raw tables alone (statistics.compute(raw=True), what
the pages cost before the pre-aggregated tables), timed over fewer runs.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pyotp
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.db.migrate import upgrade  # noqa: E402
from app.domain.clock import today_in_china  # noqa: E402
from app.domain.reference import regions  # noqa: E402
from app.main import create_app  # noqa: E402
from app.security.rbac import Principal, Role  # noqa: E402
from app.services import complaints, directory, notices, staff, statistics  # noqa: E402
from app.services.reads import ReadService  # noqa: E402
from app.worker import refresh_statistics  # noqa: E402
from tests.support.minio import MinioServer  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.samples import make_record  # noqa: E402
from tests.support.settings import local_settings  # noqa: E402

PG_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "4GB",
    "maintenance_work_mem": "256MB",
    "work_mem": "32MB",
}
ENTERPRISES = 2000
PASSWORD = "Bench-Passw0rd!"

FILL_ENTERPRISES = """
INSERT INTO enterprise (uscc, name, licence_no, category, business_scope, region_code, address)
SELECT '91' || lpad(g::text, 16, '0'), '示例汽车维修服务有限公司' || g, '苏交运管许可' || g,
       (ARRAY['1', '2', '3'])[g %% 3 + 1],
       (ARRAY['发动机维修、变速箱维修', '钣金喷漆、车身修复', '汽车电器维修、空调维修'])[g %% 3 + 1],
       (%(counties)s::text[])[g %% cardinality(%(counties)s::text[]) + 1], '江苏省示例路' || g || '号'
FROM generate_series(1, %(n)s) g
"""
FILL_VEHICLES = """
INSERT INTO vehicle (vin, plate_no, brand, model)
SELECT 'LBNCH' || lpad(g::text, 12, '0'), '苏A' || lpad((g %% 99999)::text, 5, '0'),
       (ARRAY['大众', '丰田', '本田', '别克', '比亚迪', '吉利', '日产', '宝马'])[g %% 8 + 1], '示例型号'
FROM generate_series(0, %(vins)s - 1) g
"""
FILL_HEADS = """
INSERT INTO repair_record (id, enterprise_id, settlement_no, vin, settle_date, current_version,
                           current_received_at, current_digest)
OVERRIDING SYSTEM VALUE
SELECT g, %(first_ent)s + g %% %(ents)s, 'B' || g, 'LBNCH' || lpad((g %% %(vins)s)::text, 12, '0'),
       (%(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day')::date, 1,
       %(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day',
       md5(g::text)
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""
FILL_VERSIONS = """
INSERT INTO record_version (record_id, version, received_at, kind, source, enterprise_id, settlement_no, vin,
                            digest, settle_date, mileage_km, fault_description, repair_type, items, parts,
                            labour_total, parts_total, other_total, total)
SELECT g, 1, %(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day', 'upload', 'bench',
       %(first_ent)s + g %% %(ents)s,
       'B' || g,
       'LBNCH' || lpad((g %% %(vins)s)::text, 12, '0'), md5(g::text),
       (%(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day')::date, g %% 300000, '保养',
       (ARRAY['10', '31', '32', '40', '60'])[g %% 5 + 1], %(items)s, %(parts)s, 300.00, 400.00, 0, 700.00
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""
FILL_RATINGS = """
INSERT INTO rating (record_id, enterprise_id, owner_id, attitude, quality, efficiency, transparency,
                    environment, created_at)
SELECT g, %(first_ent)s + g %% %(ents)s, 1, g %% 5 + 1, (g / 7) %% 5 + 1, (g / 3) %% 5 + 1, (g / 11) %% 5 + 1,
       (g / 13) %% 5 + 1, %(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day'
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint, 10) g
"""
FILL_COMPLAINTS = """
INSERT INTO complaint (record_id, enterprise_id, owner_id, region_code, title, content, status, created_at,
                       deadline_at, closed_at)
SELECT g, e.id, 1, e.region_code, '投诉', '内容', (ARRAY['submitted', 'accepted', 'closed'])[g %% 3 + 1],
       %(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day',
       %(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day' + interval '15 days',
       CASE WHEN g %% 3 = 2 THEN %(now)s - ((%(n)s - g) * 365 / %(n)s) * interval '1 day' + interval '3 days'
       END
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint, 1000) g
JOIN enterprise e ON e.id = %(first_ent)s + g %% %(ents)s
"""


def fill(dsn: str, n: int) -> int:
    counties = [c for c in regions() if c.startswith("32") and not c.endswith("00")]
    sample = make_record(items=4, parts=6)
    vins = max(n // 5, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(FILL_ENTERPRISES, {"counties": counties, "n": ENTERPRISES})
        first = conn.execute("SELECT min(id) FROM enterprise").fetchone()[0]  # type: ignore[index]
        conn.execute(FILL_VEHICLES, {"vins": vins})
        step = 500_000
        # one instant for every statement: a head's current_received_at must equal its version's
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        for lo in range(1, n + 1, step):
            args = {
                "now": now,
                "first_ent": first,
                "ents": ENTERPRISES,
                "vins": vins,
                "lo": lo,
                "hi": min(lo + step - 1, n),
                "n": n,
                "items": Jsonb(sample["items"]),
                "parts": Jsonb(sample["parts"]),
            }
            t = time.perf_counter()
            for sql in (FILL_HEADS, FILL_VERSIONS, FILL_RATINGS, FILL_COMPLAINTS):
                conn.execute(sql, args)
            print(
                f"  filled {args['hi']:>10,} records"
                f" ({(args['hi'] - lo + 1) / (time.perf_counter() - t):,.0f}/s)"
            )
        conn.execute("SELECT setval(pg_get_serial_sequence('repair_record', 'id'), %s)", (n + 1,))
        conn.execute(
            "INSERT INTO stat_dirty (day) SELECT DISTINCT settle_date FROM repair_record"
            " UNION SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date FROM rating"
        )
        for table in ("enterprise", "vehicle", "repair_record", "record_version", "rating", "complaint"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return int(first)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    fn()  # warm: plans and caches
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1000, samples[
        min(len(samples) - 1, round(0.95 * (len(samples) - 1)))
    ] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the number of repair records (1M)")
    ap.add_argument("--runs", type=int, default=30, help="timed requests per page")
    args = ap.parse_args()
    n = max(int(1_000_000 * args.scale), 10_000)

    pg = PostgresCluster(PG_SETTINGS).start()
    minio = MinioServer().start()
    try:
        dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"
        upgrade(pg.url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT ensure_record_partitions((now() - interval '14 months')::date, 16)")
        print(
            f"== filling: {ENTERPRISES:,} enterprises, {n:,} repairs,"
            f" {n // 10:,} ratings, {n // 1000:,} complaints =="
        )
        t = time.perf_counter()
        first_ent = fill(dsn, n)
        print(f"  done in {time.perf_counter() - t:.0f} s")
        settings = local_settings(pg.url, minio, log_level="WARNING")
        with TestClient(create_app(settings)) as client:
            db = client.app.state.runtime.db  # type: ignore[attr-defined]
            t = time.perf_counter()
            days = refresh_statistics(db)
            print(f"== aggregating {days} days (the worker's refresh): {time.perf_counter() - t:.1f} s ==")
            # a worker round after a day of uploads: one day (and its month) re-aggregated
            rounds = []
            for _ in range(5):
                with db.transaction() as s:
                    s.execute(text("INSERT INTO stat_dirty (day) VALUES (:d)"), {"d": today_in_china()})
                t = time.perf_counter()
                refresh_statistics(db)
                rounds.append((time.perf_counter() - t) * 1000)
            print(f"== a worker round re-aggregating one day: p50 {sorted(rounds)[2]:.0f} ms ==")
            # between two worker rounds the latest day's uploads are not aggregated yet: the statistics
            # read that day from the raw tables, as they mostly will in service
            with db.transaction() as s:
                s.execute(text("INSERT INTO stat_dirty (day) SELECT max(settle_date) FROM repair_record"))
            print("== statistics below: the latest day (1/365 of the repairs) read raw, as between rounds ==")
            run(client, args.runs, first_ent)
    finally:
        minio.stop()
        pg.stop()


def run(client: TestClient, runs: int, first_ent: int) -> None:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    today = today_in_china()
    # a regulator of each level, and an owner with a car of 20 repairs
    with rt.db.transaction() as s:
        sys_admin = staff.bootstrap(s, rt.crypto, rt.audit, 12, "bench-sys", PASSWORD, Role.SYSTEM_ADMIN)
        sec_admin = staff.bootstrap(s, rt.crypto, rt.audit, 12, "bench-sec", PASSWORD, Role.SECURITY_ADMIN)
    regulators = {}
    for code in ("320000", "320500", "320505"):
        with rt.db.transaction() as s:  # the system administrator gets an activation code only
            made = staff.create(
                s, rt.audit, Principal(Role.SYSTEM_ADMIN, sys_admin.staff_id), f"reg-{code}", None, 3600
            )
        # the regulator's own first login: password and TOTP (as the portal's /staff/first-login does)
        first = {"username": f"reg-{code}", "activation_code": made.activation_code, "new_password": PASSWORD}
        r = client.post("/api/v1/staff/first-login", json=first)
        assert r.status_code == 200, r.text
        secret = r.json()["totp_secret"]
        # the previous step's code, so that the login below (this step's code) is not a replay
        confirm = {"enrolment_token": r.json()["enrolment_token"],
                   "totp_code": pyotp.TOTP(secret).at(time.time() - 30)}
        r = client.post("/api/v1/staff/first-login/confirm", json=confirm)
        assert r.status_code == 200, r.text
        with rt.db.transaction() as s:
            staff.assign_role(
                s,
                rt.audit,
                Principal(Role.SECURITY_ADMIN, sec_admin.staff_id),
                made.staff_id,
                Role.REGULATOR,
                code,
            )
        regulators[code] = (secret, Principal(Role.REGULATOR, made.staff_id, region_code=code))
    notice_author = regulators["320000"][1]
    with rt.db.transaction() as s:
        for i in range(60):
            notices.publish(
                s, rt.objects, rt.audit, notice_author, "notice", f"通知 {i}", "正文" * 50, [], 1 << 20
            )
    owner = client.post(
        "/api/v1/owner/accounts", json={"phone": "13912345678", "password": "bench pass"}
    ).json()
    vin = "LBNCH000000000007"  # car 7 of the pool: n/vins repairs, about 5
    with rt.db.transaction() as s:
        s.execute(
            # the whole history, as after a registry check (a code alone shows one shop's records)
            text(
                "INSERT INTO personal.owner_vehicle (owner_id, vin, via_record_id, full_via, full_at)"
                " VALUES (:o, :v, 8, 'registry', now())"
            ),
            {"o": owner["owner_id"], "v": vin},
        )
    uscc = "91" + str(first_ent + 7).zfill(16)

    owner_web = TestClient(client.app)
    owner_web.post("/owner/login", data={"phone": "13912345678", "password": "bench pass"})
    staff_web = {}
    for code, (secret, _) in regulators.items():
        w = TestClient(client.app)
        w.post(
            "/staff/login",
            data={
                "username": f"reg-{code}",
                "password": PASSWORD,
                "totp_code": pyotp.TOTP(secret).now(),
            },
        )
        staff_web[code] = w

    def page(web: TestClient, url: str, **params: Any) -> Callable[[], Any]:
        def go() -> None:
            r = web.get(url, params=params)
            assert r.status_code == 200, (url, r.status_code, r.text[:300])

        return go

    def in_session(work: Callable[[Any], Any]) -> Callable[[], Any]:
        def go() -> None:
            with rt.db.transaction() as s:
                work(s)

        return go

    owner_principal = Principal(Role.OWNER, owner["owner_id"])
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "public: search by name + region",
            page(client, "/enterprises", name="示例汽车维修", region="320500"),
            in_session(lambda s: directory.search(s, directory.SearchQuery("示例汽车维修", "320500"))),
            None,
        ),
        (
            "public: search by business scope",
            page(client, "/enterprises", scope="变速箱"),
            in_session(lambda s: directory.search(s, directory.SearchQuery(scope="变速箱"))),
            None,
        ),
        (
            "public: enterprise page",
            page(client, f"/enterprises/{uscc}"),
            in_session(lambda s: directory.profile(s, uscc)),
            None,
        ),
        ("public: notices list", page(client, "/notices"), in_session(lambda s: notices.listing(s)), None),
        (
            "owner: vehicle file page",
            page(owner_web, f"/owner/vehicles/{vin}"),
            in_session(lambda s: ReadService(s, rt.crypto, rt.audit).vehicle_history(owner_principal, vin)),
            None,
        ),
        (
            "owner: vehicle file PDF",
            page(owner_web, f"/owner/vehicles/{vin}/file.pdf"),
            in_session(lambda s: ReadService(s, rt.crypto, rt.audit).vehicle_history(owner_principal, vin)),
            None,
        ),
    ]
    for code, days in (
        ("320505", 30),
        ("320505", 365),
        ("320500", 30),
        ("320500", 365),
        ("320000", 30),
        ("320000", 365),
    ):
        start = today.fromordinal(today.toordinal() - days + 1)
        who = regulators[code][1]
        period = statistics.Period(start, today)
        cases.append(
            (
                f"regulator {code}: statistics, {days} days",
                page(
                    staff_web[code], "/regulator/statistics", start=start.isoformat(), end=today.isoformat()
                ),
                in_session(lambda s, who=who, period=period: statistics.compute(s, who, period)),
                in_session(lambda s, who=who, period=period: statistics.compute(s, who, period, raw=True)),
            )
        )
    cases.append(
        (
            "regulator 320500: complaints list",
            page(staff_web["320500"], "/regulator"),
            in_session(lambda s: complaints.of_region(s, regulators["320500"][1])),
            None,
        )
    )
    print(f"== page server time vs. the service call behind it (ms, {runs} runs each) ==")
    print(
        f"  {'page':<42} {'page p50':>9} {'p95':>8}   {'baseline p50':>12} {'p95':>8}"
        f"   {'raw SQL p50':>11} {'p95':>8}"
    )
    for label, web_call, base_call, raw_call in cases:
        p50, p95 = timed(web_call, runs)
        b50, b95 = timed(base_call, runs)
        raw = ""
        if raw_call is not None:  # seconds each at 1M repairs: a few runs
            r50, r95 = timed(raw_call, min(runs, 3))
            raw = f"   {r50:>11.1f} {r95:>8.1f}"
        print(f"  {label:<42} {p50:>9.1f} {p95:>8.1f}   {b50:>12.1f} {b95:>8.1f}{raw}", flush=True)


if __name__ == "__main__":
    main()
