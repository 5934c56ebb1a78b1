"""Ingestion rate and history latency, each next to a same-run baseline.

    .venv/bin/python bench/ingest_bench.py            # full run: history at 10M and 50M records
    .venv/bin/python bench/ingest_bench.py --scale 0.1  # quick run: 1M and 5M
    .venv/bin/python bench/ingest_bench.py --sizes 2M --no-upload   # history only, at 2M records
    .venv/bin/python bench/ingest_bench.py --smoke      # seconds: tiny sizes, every figure printed once

What it does, on its own throwaway PostgreSQL 15 cluster and MinIO server (tests.support), with
the app served by real uvicorn workers on loopback:

1. Upload rate through the HTTP API: concurrent clients send records with 8 work items and 8 parts
   each, one per request (`/records`) and in batches of 100 (`/records/batch`). Then, in the same
   run, the same records (fresh settlement numbers) written straight into the same tables with
   PostgreSQL COPY — the ceiling of the storage itself. Prints records/s for each and the ratio.
2. History latency: the records table has 60 monthly partitions (5 years); one VIN gets 20
   repairs spread over 20 months (so over 20 partitions); the table is filled with generated rows
   (INSERT … SELECT generate_series, server side, spread over the 60 months) to each size (default
   10M and then 50M records). At each size it prints p50/p99 of the owner's history request over
   HTTP and, as the baseline, of the bare SQL query behind it, the partitions its plan holds and
   the ones it reads (EXPLAIN ANALYZE), the database's size, and the throughput of 32 concurrent
   readers, audited, beside the same reads with the audit write switched off (a bench-only patch
   in a second app process, never a setting of the app).

Durability is relaxed on the throwaway cluster (fsync off), the same for the API and COPY. The
filler rows are written with triggers off (session_replication_role = replica: the statistics
marks and foreign keys of synthetic rows are not what is measured) and carry one work item and
one part each (the disk: 50M records of 8+8 would be ~100 GB); the target car's 20 records are
real uploads with 8+8. On 2 cores filling runs at roughly 50–100k records/s;
`--scale` multiplies table sizes (and the upload counts) to trade fidelity for time.
"""

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.db.migrate import upgrade  # noqa: E402
from app.domain.record import digest, parse_record  # noqa: E402
from app.security.auditlog import AuditLog  # noqa: E402
from app.services import roster  # noqa: E402
from app.services.records import VERSION_CONTENT_TYPES, version_row  # noqa: E402
from tests.support.minio import MinioServer  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.samples import make_enterprise, make_record, make_vin, roster_row  # noqa: E402

PG_SETTINGS = {
    "shared_buffers": "2GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "512MB",
    "max_connections": "200",
}
VERSION_COLS = [
    "record_id", "version", "received_at", "kind", "source", "enterprise_id", *VERSION_CONTENT_TYPES
]  # fmt: skip


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


def _start_app(
    db_url: str, minio: MinioServer, pythonpath: str | None = None, source: Path = REPO
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "PBOX_DATABASE_URL": db_url,
        "PBOX_S3_ENDPOINT": minio.endpoint,
        "PBOX_S3_ACCESS_KEY": minio.access_key,
        "PBOX_S3_SECRET_KEY": minio.secret_key,
        "PBOX_SECRET_KEY": "bench-" + "k" * 32,
        "PBOX_FIELD_KEY": secrets.token_hex(32),  # the app refuses to start without one
        "PBOX_PORT": str(port),
        "PBOX_WORKERS": "2",
        "PBOX_LOG_LEVEL": "WARNING",
        "PBOX_DB_POOL_SIZE": "20",
    }
    if pythonpath:  # a bench-only patch (sitecustomize) for this process and its workers
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    if source != REPO:  # another checkout's app (--compare-app), ahead of the installed one
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "app.server"], env=env, cwd=source)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded 2-core machine takes a while to start 2 workers
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("app did not become ready")


def start_app(
    db_url: str, minio: MinioServer, pythonpath: str | None = None, source: Path = REPO
) -> tuple[subprocess.Popen[bytes], str]:
    """The app, tried again (up to 3 times) with MinIO started again if it went away meanwhile."""
    for attempt in range(3):
        try:
            return _start_app(db_url, live(minio), pythonpath, source)
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(60)  # a loaded machine takes its time to shut 2 workers down
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def register(base: str, db_url: str) -> dict[str, str]:
    """A licensed shop: on the licence roster first (as `app-admin roster import` puts it), so its
    registration is approved at once and it gets a token."""
    ent = make_enterprise()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn, sa.orm.Session(bind=conn) as s:
        report = roster.import_rows(s, AuditLog(), [(2, roster_row(ent))], "bench")
        assert not report.bad, report.bad
    engine.dispose()
    reg = httpx.post(f"{base}/api/v1/collection/enterprises", json=ent).json()
    assert reg["status"] == "active", reg
    tok = httpx.post(
        f"{base}/api/v1/collection/token", json={"key_id": reg["key_id"], "secret": reg["secret"]}
    )
    return {
        "Authorization": f"Bearer {tok.json()['access_token']}",
        "enterprise_id": str(reg["enterprise_id"]),
    }


def records(n: int, prefix: str) -> list[dict[str, Any]]:
    today = date.today()
    return [
        make_record(
            f"{prefix}-{i}",
            make_vin(),
            items=8,
            parts=8,
            settle=today - timedelta(days=1 + i % 300),
            mileage=10_000 + i,
        )
        for i in range(n)
    ]


async def api_upload(
    base: str, headers: dict[str, str], recs: list[dict[str, Any]], clients: int, batch: int
) -> float:
    chunks = [recs[i : i + batch] for i in range(0, len(recs), batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)
    auth = {"Authorization": headers["Authorization"]}

    async def post(http: httpx.AsyncClient, chunk: list[dict[str, Any]]) -> httpx.Response:
        if batch == 1:
            return await http.post(f"{base}/api/v1/collection/records", json=chunk[0], headers=auth)
        url = f"{base}/api/v1/collection/records/batch"
        return await http.post(url, json={"records": chunk}, headers=auth)

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            # As a shop's client does: an upload is idempotent by settlement number, so a connection
            # the server closed as it was reused (keep-alive race on a loaded machine) is sent again.
            for attempt in range(3):
                try:
                    r = await post(http, chunk)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            r.raise_for_status()

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return len(recs) / (time.perf_counter() - start)


def copy_rate(dsn: str, enterprise_id: int, recs: list[dict[str, Any]]) -> float:
    """The same rows the API writes (vehicle, record head, version), loaded with COPY in one transaction."""
    parsed = [rec for r in recs if (rec := parse_record(r)[0]) is not None]
    digests = [digest(rec) for rec in parsed]
    start = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        ids = [
            row[0]
            for row in cur.execute(
                "SELECT nextval(pg_get_serial_sequence('repair_record', 'id')) FROM generate_series(1, %s)",
                (len(parsed),),
            ).fetchall()
        ]
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        with cur.copy(
            "COPY vehicle (vin, plate_no, plate_colour, brand, model, use_nature, fuel_type) FROM STDIN"
        ) as cp:
            for rec in parsed:
                v = rec.vehicle
                cp.write_row((v.vin, v.plate_no, v.plate_colour, v.brand, v.model, v.use_nature, v.fuel_type))
        with cur.copy(
            "COPY repair_record (id, enterprise_id, settlement_no, vin, settle_date, current_version, "
            "current_received_at, current_digest) FROM STDIN"
        ) as cp:
            for rid, rec, dig in zip(ids, parsed, digests, strict=True):
                cp.write_row(
                    (rid, enterprise_id, rec.settlement_no, rec.vehicle.vin, rec.settle_date, 1, now, dig)
                )
        with cur.copy(f"COPY record_version ({', '.join(VERSION_COLS)}) FROM STDIN") as cp:
            for rid, rec, dig in zip(ids, parsed, digests, strict=True):
                row = version_row(rec, rid, 1, enterprise_id, "copy", now, dig)
                row["items"] = Jsonb(row["items"])
                row["parts"] = Jsonb(row["parts"])
                cp.write_row(tuple(row[c] for c in VERSION_COLS))
        conn.commit()
    return len(parsed) / (time.perf_counter() - start)


def upload_part(base: str, dsn: str, shop: dict[str, str], clients: int, n_single: int, n_batch: int) -> None:
    print(f"== upload rate: records with 8 items + 8 parts, {clients} concurrent clients ==")
    single = asyncio.run(api_upload(base, shop, records(n_single, "S"), clients, 1))
    batch = asyncio.run(api_upload(base, shop, records(n_batch, "B"), max(clients // 4, 2), 100))
    copy = copy_rate(dsn, int(shop["enterprise_id"]), records(n_batch, "C"))
    print(f"  API, one record per request : {single:>9,.0f} records/s  ({n_single} records)")
    print(f"  API, batches of 100         : {batch:>9,.0f} records/s  ({n_batch} records)")
    print(f"  PostgreSQL COPY (baseline)  : {copy:>9,.0f} records/s  ({n_batch} records)")
    print(f"  ratio API/COPY              : single {single / copy:.1%}, batch {batch / copy:.1%}")


# --- Part 2: history latency ------------------------------------------------------------------------

MONTHS = 60  # 5 years of monthly partitions
SPREAD_DAYS = MONTHS * 30 - 20  # filler rows fall in every month but the newest few days

FILL_HEAD = """
INSERT INTO repair_record (id, enterprise_id, settlement_no, vin, settle_date, current_version,
                           current_received_at, current_digest)
OVERRIDING SYSTEM VALUE
SELECT g, %(ent)s, 'F' || g, 'LFILL' || lpad((g %% %(vins)s)::text, 12, '0'),
       (now() - (g %% %(days)s) * interval '1 day')::date, 1, now() - (g %% %(days)s) * interval '1 day',
       md5(g::text)
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""
FILL_VERSION = """
INSERT INTO record_version (record_id, version, received_at, kind, source, enterprise_id, settlement_no, vin,
                            digest, plate_no, repair_date, settle_date, mileage_km, fault_description,
                            repair_type, items, parts, labour_total, parts_total, other_total, total)
SELECT g, 1, now() - (g %% %(days)s) * interval '1 day', 'upload', 'bench', %(ent)s, 'F' || g,
       'LFILL' || lpad((g %% %(vins)s)::text, 12, '0'), md5(g::text),
       '苏A' || lpad((g %% 99999)::text, 5, '0'),
       (now() - (g %% %(days)s + 1) * interval '1 day')::date,
       (now() - (g %% %(days)s) * interval '1 day')::date,
       g %% 300000, '保养', '31', %(items)s, %(parts)s, 300.00, 400.00, 0, 700.00
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""


# Secondary indexes of the two tables (not the keys), dropped for a fill and built again after it:
# building an index once is several times faster than updating it row by row.
SECONDARY_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('repair_record'::regclass, 'record_version'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
"""


def fill_range(
    dsn: str, enterprise_id: int, upto: int, ids: tuple[int, int], items: Jsonb, parts: Jsonb
) -> None:
    args = {
        "ent": enterprise_id,
        "vins": max(upto // 5, 1),
        "days": SPREAD_DAYS,
        "lo": ids[0],
        "hi": ids[1],
        "items": items,
        "parts": parts,
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        # synthetic rows: no statistics marks (triggers) nor foreign-key checks for them
        conn.execute("SET session_replication_role = replica")
        conn.execute(FILL_HEAD, args)
        conn.execute(FILL_VERSION, args)


def fill(dsn: str, enterprise_id: int, start_id: int, upto: int, sample: dict[str, Any]) -> None:
    """Generated records (about 5 per car) until the table holds `upto` rows; ids above the app's."""
    items = Jsonb(sample["items"][:1])
    parts_json = Jsonb(sample["parts"][:1])
    step = 1_000_000
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM repair_record").fetchone()[0]  # type: ignore[index]
        lo = start_id + have
        t0 = time.perf_counter()
        indexes = conn.execute(SECONDARY_INDEXES).fetchall() if upto - have >= 1_000_000 else []
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        while have < upto:
            n = min(step, upto - have)
            t = time.perf_counter()
            # two connections, each half of the ids: twice the share of a busy machine's cores
            half = n // 2
            parts = [(lo, lo + half - 1), (lo + half, lo + n - 1)] if half else [(lo, lo + n - 1)]
            with ThreadPoolExecutor(len(parts)) as pool:
                list(pool.map(lambda r: fill_range(dsn, enterprise_id, upto, r, items, parts_json), parts))
            have, lo = have + n, lo + n
            if n >= step or have >= upto:
                print(
                    f"  filled {have:>11,} records ({n / (time.perf_counter() - t):,.0f} rows/s)", flush=True
                )
        t = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, ddl in indexes:
            conn.execute(ddl)
        if indexes:
            print(f"  {len(indexes)} secondary indexes built again in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        # the planner's statistics; no VACUUM (it took as long as the fill, and reads are what is measured)
        conn.execute("ANALYZE repair_record")
        conn.execute("ANALYZE record_version")
        analyze = time.perf_counter() - t
        print(f"  fill {time.perf_counter() - t0:.0f} s (of which ANALYZE {analyze:.0f} s)")


def target_vin(base: str, headers: dict[str, str], dsn: str) -> tuple[str, dict[str, str]]:
    """A car with 20 repairs, one per month back over 20 months, and an owner who verified it."""
    vin = make_vin()
    today = date.today()
    codes = []
    for k in range(20):
        rec = make_record(
            f"T-{k}",
            vin,
            items=8,
            parts=8,
            settle=today - timedelta(days=30 * k + 1),
            mileage=100_000 - k * 3000,
        )
        r = httpx.post(
            f"{base}/api/v1/collection/records", json=rec, headers={"Authorization": headers["Authorization"]}
        )
        r.raise_for_status()
        codes.append(r.json()["query_code"])
    with psycopg.connect(dsn) as conn:
        # moving a version to another month moves it to that month's partition (an UPDATE of the key)
        for k in range(20):
            shift = f"{k} months"
            conn.execute(
                "UPDATE record_version SET received_at = received_at - %s::interval "
                "WHERE vin = %s AND settlement_no = %s",
                (shift, vin, f"T-{k}"),
            )
            conn.execute(
                "UPDATE repair_record SET current_received_at = current_received_at - %s::interval "
                "WHERE vin = %s AND settlement_no = %s",
                (shift, vin, f"T-{k}"),
            )
    phone = "139" + str(time.time_ns())[-8:]
    httpx.post(
        f"{base}/api/v1/owner/accounts", json={"phone": phone, "password": "bench-pass-1"}
    ).raise_for_status()
    tok = httpx.post(f"{base}/api/v1/owner/token", json={"phone": phone, "password": "bench-pass-1"}).json()
    owner = {"Authorization": f"Bearer {tok['access_token']}"}
    httpx.post(
        f"{base}/api/v1/owner/vehicles", json={"vin": vin, "query_code": codes[0]}, headers=owner
    ).raise_for_status()
    return vin, owner


# The query behind the history (app.services.reads: one join on the receipt time; the driver
# prepares it after 5 uses, and the generic plan prunes partitions as it runs), and an alternative
# measured beside it: the heads by VIN, then the versions with their receipt times as constants, so
# the plan holds only their partitions (but is planned on every call, and takes two round trips).
HISTORY_SQL_V1 = """
SELECT v.* FROM repair_record r
JOIN record_version v ON v.record_id = r.id AND v.version = r.current_version
                     AND v.received_at = r.current_received_at
WHERE r.vin = %(vin)s AND r.status = 'active' ORDER BY r.settle_date DESC
"""
HEADS_SQL = """
SELECT r.id, r.current_version, r.current_received_at, r.enterprise_id, e.name, e.uscc
FROM repair_record r JOIN enterprise e ON e.id = r.enterprise_id
WHERE r.vin = %(vin)s AND r.status = 'active' ORDER BY r.settle_date DESC, r.id DESC
"""
VERSIONS_SQL = "SELECT * FROM record_version WHERE received_at = ANY(%(times)s) AND record_id = ANY(%(ids)s)"


def two_step(conn: psycopg.Connection[Any], vin: str) -> list[Any]:
    heads = conn.execute(HEADS_SQL, {"vin": vin}).fetchall()
    return conn.execute(VERSIONS_SQL, versions_args(heads)).fetchall()


def versions_args(heads: list[Any]) -> dict[str, Any]:
    return {"times": sorted({h[2] for h in heads}), "ids": [h[0] for h in heads]}


def plan_partitions(dsn: str, sql: str, params: dict[str, Any]) -> str:
    """How many record_version partitions the plan holds and how many it reads, from EXPLAIN ANALYZE."""
    with psycopg.connect(dsn) as conn:
        conn.execute(sql, params).fetchall()  # the catalog cached, as in a pooled connection
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()[0][0]  # type: ignore[index]
    in_plan = read = 0
    removed = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal in_plan, read, removed
        rel = node.get("Relation Name", "")
        if rel.startswith("record_version_"):
            in_plan += 1
            if node.get("Actual Loops", 0) > 0:
                read += 1
        removed += node.get("Subplans Removed", 0)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return (
        f"partitions in plan {in_plan + removed} (pruned at start {removed}), read {read};"
        f" planning {plan['Planning Time']:.2f} ms, execution {plan['Execution Time']:.2f} ms"
    )


def history_latency(
    apps: dict[str, str], owner: dict[str, str], dsn: str, vin: str, samples: int
) -> dict[str, float]:
    """p50/p99 of the history over HTTP for each app and of the bare SQL of both queries, the
    variants taking turns sample by sample: on a shared machine they see the same load."""
    times: dict[str, list[float]] = {}
    clients = {name: httpx.Client(base_url=base, headers=owner) for name, base in apps.items()}
    conns = {name: psycopg.connect(dsn) for name in ("sql", "v1")}
    queries = {
        "sql": lambda conn: two_step(conn, vin),
        "v1": lambda conn: conn.execute(HISTORY_SQL_V1, {"vin": vin}).fetchall(),
    }
    try:
        for _ in range(samples):
            for name, c in clients.items():
                t = time.perf_counter()
                r = c.get(f"/api/v1/owner/vehicles/{vin}/history")
                times.setdefault(name, []).append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["records"]) == 20, r.text
            for name, query in queries.items():
                t = time.perf_counter()
                rows = query(conns[name])
                times.setdefault(name, []).append(time.perf_counter() - t)
                assert len(rows) == 20, len(rows)
    finally:
        for c in clients.values():
            c.close()
        for conn in conns.values():
            conn.close()
    return {f"{name}_p{p}": pct(ts, p) for name, ts in times.items() for p in (50, 99)}


# Started as sitecustomize in the second app process (and its workers) only: the history reads
# without their audit row, to see what the audit write costs 32 concurrent readers. Never a setting.
NO_AUDIT_PATCH = """
import app.services.reads as _reads
_reads.ReadService._audit = lambda self, who, action, subject, **detail: None
"""


def readers(
    apps: dict[str, str], owner: dict[str, str], vin: str, clients: int, seconds: float
) -> dict[str, float]:
    """Requests/s of `clients` concurrent owners' history reads against each app, the apps taking
    turns in rounds (a third of `seconds` each, three rounds) so they see the same load."""
    done: dict[str, int] = dict.fromkeys(apps, 0)
    spent: dict[str, float] = dict.fromkeys(apps, 0.0)

    async def client(http: httpx.AsyncClient, name: str, until: float) -> None:
        while time.perf_counter() < until:
            r = await http.get(f"{apps[name]}/api/v1/owner/vehicles/{vin}/history", headers=owner)
            assert r.status_code == 200, r.text
            done[name] += 1

    async def run() -> None:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
            for _ in range(3):
                for name in apps:
                    start = time.perf_counter()
                    until = start + seconds / 3
                    await asyncio.gather(*(client(http, name, until) for _ in range(clients)))
                    spent[name] += time.perf_counter() - start

    asyncio.run(run())
    return {name: done[name] / spent[name] for name in apps}


def durable(dsn: str, on: bool) -> None:
    """fsync and synchronous_commit on (or back to the throwaway cluster's off), without a restart."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in ("fsync", "synchronous_commit"):
            conn.execute(f"ALTER SYSTEM SET {name} = {'on' if on else 'off'}")
        conn.execute("SELECT pg_reload_conf()")


def audit_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM audit.event").fetchone()[0]  # type: ignore[index]


def db_size(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]  # type: ignore[index]


def parse_size(text: str) -> int:
    mult = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
    t = text.strip().lower()
    return int(float(t[:-1]) * mult[t[-1]]) if t[-1] in mult else int(t)


def live(minio: MinioServer) -> MinioServer:
    """The MinIO server, started again if it went away (on a shared machine something may stop it
    during a long fill); an app checks its bucket when it starts, and history reads use no objects."""
    if minio._proc is not None and minio._proc.poll() is not None:
        print("  (MinIO had stopped: started again)", flush=True)
        minio.start()  # same port and data
    return minio


def history_part(
    base: str,
    db_url: str,
    dsn: str,
    minio: MinioServer,
    shop: dict[str, str],
    sizes: list[int],
    samples: int,
    seconds: float,
    compare: Path | None,
) -> None:
    vin, owner = target_vin(base, shop, dsn)
    sample = make_record(items=8, parts=8)
    print(f"== history of a VIN with 20 repairs in 20 of {MONTHS} monthly partitions (ms) ==")
    for size in sizes:
        fill(dsn, int(shop["enterprise_id"]), 10_000_000_000, size, sample)
        others: list[subprocess.Popen[bytes]] = []
        with tempfile.TemporaryDirectory(prefix="pbox-bench-noaudit-") as patch_dir:
            try:
                # beside this tree's app: the same app with the audit write patched out (bench only),
                # and the app of another checkout (--compare-app); all measured taking turns
                Path(patch_dir, "sitecustomize.py").write_text(NO_AUDIT_PATCH)
                bare, bare_base = start_app(db_url, live(minio), pythonpath=patch_dir)
                others.append(bare)
                apps = {"http": base}
                if compare is not None:
                    old, old_base = start_app(db_url, live(minio), source=compare)
                    others.append(old)
                    apps["old"] = old_base
                lat = history_latency(apps, owner, dsn, vin, samples)
                report(
                    f"  {size:>11,} records, database {db_size(dsn)}: HTTP p50 {lat['http_p50']:.1f} p99"
                    f" {lat['http_p99']:.1f} | bare SQL p50 {lat['v1_p50']:.1f} p99 {lat['v1_p99']:.1f}"
                    f" (HTTP/SQL p99 {lat['http_p99'] / lat['v1_p99']:.1f}×) | two-step alternative p50"
                    f" {lat['sql_p50']:.1f} p99 {lat['sql_p99']:.1f}",
                    compare
                    and f" | the app of {compare}: HTTP p50 {lat['old_p50']:.1f} p99 {lat['old_p99']:.1f}",
                )
                with psycopg.connect(dsn) as conn:
                    heads = conn.execute(HEADS_SQL, {"vin": vin}).fetchall()
                explained = plan_partitions(dsn, VERSIONS_SQL, versions_args(heads))
                print(f"    EXPLAIN, the two-step alternative's versions query: {explained}")
                explained = plan_partitions(dsn, HISTORY_SQL_V1, {"vin": vin})
                print(f"    EXPLAIN, the service's join: {explained}")
                # durable commits, as in production: the chain's lock is held until the commit's WAL
                # flush, so its cost shows only with fsync and synchronous_commit on
                durable(dsn, True)
                before = audit_rows(dsn)
                rates = readers(
                    {"audited": base, "bare": bare_base}
                    | ({"old": apps["old"]} if compare is not None else {}),
                    owner,
                    vin,
                    32,
                    seconds,
                )
                written = audit_rows(dsn) - before
            finally:
                durable(dsn, False)
                for proc in others:
                    stop(proc)
        report(
            f"    32 concurrent readers, durable commits: audited {rates['audited']:,.0f} req/s"
            f" ({written:,} audit rows) | audit write off (bench only) {rates['bare']:,.0f} req/s"
            f" | ratio {rates['audited'] / rates['bare']:.2f}",
            compare and f" | the app of {compare}, audited: {rates['old']:,.0f} req/s",
        )


def report(line: str, compared: str | None) -> None:
    """A figure line, with the other checkout's figure (--compare-app) after it when there is one."""
    print(line + (compared or ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies table sizes and upload counts")
    ap.add_argument("--sizes", help="history table sizes, e.g. 1M,10M,50M (overrides --scale)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    ap.add_argument("--no-upload", action="store_true", help="skip part 1 (upload rate)")
    ap.add_argument(
        "--compare-app",
        type=Path,
        help="another checkout (e.g. the code before a change): its history"
        " latency and readers measured on the same data, beside this tree's",
    )
    ap.add_argument("--smoke", action="store_true", help="tiny run printing every figure (tests)")
    ap.add_argument("--upload-only", action="store_true", help="the upload rates only, no history part")
    args = ap.parse_args()
    if args.smoke:
        args.scale, args.sizes = 0.001, args.sizes or "3000"
    sizes = (
        [parse_size(x) for x in args.sizes.split(",")]
        if args.sizes
        else [max(int(n * args.scale), 1000) for n in (10_000_000, 50_000_000)]
    )
    samples, seconds = (20, 1.0) if args.smoke else (300, 8.0)
    n_single = max(int(2000 * min(args.scale, 1)), 200)
    n_batch = max(int(10_000 * min(args.scale, 1)), 1000)
    if args.smoke:
        n_single, n_batch, args.clients = 50, 200, 4

    pg = PostgresCluster(PG_SETTINGS).start()
    minio = MinioServer().start()
    app = None
    try:
        db_url = pg.url
        dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"
        upgrade(db_url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT ensure_record_partitions((now() - make_interval(months => %s))::date, %s)",
                (MONTHS - 1, MONTHS + 2),
            )
        app, base = start_app(db_url, minio)
        shop = register(base, db_url)
        if not args.no_upload:
            upload_part(base, dsn, shop, args.clients, n_single, n_batch)
        if args.upload_only:
            return
        history_part(base, db_url, dsn, minio, shop, sizes, samples, seconds, args.compare_app)
    finally:
        if app is not None:
            stop(app)
        minio.stop()
        pg.stop()


if __name__ == "__main__":
    main()
