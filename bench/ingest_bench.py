"""Ingestion rate and history latency, each next to a same-run baseline.

    .venv/bin/python bench/ingest_bench.py            # full run: history at 1M and 10M records
    .venv/bin/python bench/ingest_bench.py --scale 0.1  # quick run: 100k and 1M

What it does, on its own throwaway PostgreSQL 15 cluster and MinIO server (app.devtools), with
the app served by real uvicorn workers on loopback:

1. Upload rate through the HTTP API: concurrent clients send records with 8 work items and 8 parts
   each, one per request (`/records`) and in batches of 100 (`/records/batch`). Then, in the same
   run, the same records (fresh settlement numbers) written straight into the same tables with
   PostgreSQL COPY — the ceiling of the storage itself. Prints records/s for each and the ratio.
2. History latency: one VIN gets 20 repairs spread over 20 months (so over 20 partitions); the
   records table is filled with generated rows (INSERT … SELECT generate_series, server side) to
   1M and then 10M records; at each size it prints p50/p99 of the owner's history request over
   HTTP and, as the baseline, of the bare SQL query behind it.

Durability is relaxed on the throwaway cluster (fsync off), the same for the API and COPY.
On 2 cores the default run takes about 10–15 minutes, most of it generating the 10M rows;
`--scale` multiplies both table sizes (and the upload counts) to trade fidelity for time.
"""

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
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
from app.devtools.minio import MinioServer  # noqa: E402
from app.devtools.ports import free_port  # noqa: E402
from app.devtools.postgres import PostgresCluster  # noqa: E402
from app.devtools.samples import make_enterprise, make_record, make_vin, roster_row  # noqa: E402
from app.domain.record import digest, parse_record  # noqa: E402
from app.security.auditlog import AuditLog  # noqa: E402
from app.services import roster  # noqa: E402
from app.services.records import version_row  # noqa: E402

PG_SETTINGS = {
    "shared_buffers": "2GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "512MB",
    "max_connections": "200",
}
VERSION_COLS = [
    "record_id",
    "version",
    "received_at",
    "kind",
    "source",
    "enterprise_id",
    "settlement_no",
    "vin",
    "digest",
    "plate_no",
    "plate_colour",
    "repair_date",
    "settle_date",
    "mileage_km",
    "fault_description",
    "repair_type",
    "items",
    "parts",
    "labour_total",
    "parts_total",
    "other_total",
    "total",
]


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


def start_app(db_url: str, minio: MinioServer) -> tuple[subprocess.Popen[bytes], str]:
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
    proc = subprocess.Popen([sys.executable, "-m", "app.server"], env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("app did not become ready")


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

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            if batch == 1:
                r = await http.post(f"{base}/api/v1/collection/records", json=chunk[0], headers=auth)
            else:
                r = await http.post(
                    f"{base}/api/v1/collection/records/batch", json={"records": chunk}, headers=auth
                )
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


FILL_HEAD = """
INSERT INTO repair_record (id, enterprise_id, settlement_no, vin, settle_date, current_version,
                           current_received_at, current_digest)
OVERRIDING SYSTEM VALUE
SELECT g, %(ent)s, 'F' || g, 'LFILL' || lpad((g %% %(vins)s)::text, 12, '0'),
       (now() - (g %% 700) * interval '1 day')::date, 1, now() - (g %% 700) * interval '1 day', md5(g::text)
FROM generate_series(%(lo)s, %(hi)s) g
"""
FILL_VERSION = """
INSERT INTO record_version (record_id, version, received_at, kind, source, enterprise_id, settlement_no, vin,
                            digest, plate_no, repair_date, settle_date, mileage_km, fault_description,
                            repair_type, items, parts, labour_total, parts_total, other_total, total)
SELECT g, 1, now() - (g %% 700) * interval '1 day', 'upload', 'bench', %(ent)s, 'F' || g,
       'LFILL' || lpad((g %% %(vins)s)::text, 12, '0'), md5(g::text),
       '苏A' || lpad((g %% 99999)::text, 5, '0'),
       (now() - (g %% 700 + 1) * interval '1 day')::date, (now() - (g %% 700) * interval '1 day')::date,
       g %% 300000, '保养', '31', %(items)s, %(parts)s, 300.00, 400.00, 0, 700.00
FROM generate_series(%(lo)s, %(hi)s) g
"""


def fill(dsn: str, enterprise_id: int, start_id: int, upto: int, sample: dict[str, Any]) -> None:
    """Generated records (about 5 per car) until the table holds `upto` rows; ids above the app's."""
    items = Jsonb(sample["items"])
    parts = Jsonb(sample["parts"])
    step = 1_000_000
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM repair_record").fetchone()[0]  # type: ignore[index]
        lo = start_id + have
        while have < upto:
            n = min(step, upto - have)
            args = {
                "ent": enterprise_id,
                "vins": max(upto // 5, 1),
                "lo": lo,
                "hi": lo + n - 1,
                "items": items,
                "parts": parts,
            }
            t = time.perf_counter()
            conn.execute(FILL_HEAD, args)
            conn.execute(FILL_VERSION, args)
            have, lo = have + n, lo + n
            print(f"  filled {have:>11,} records ({n / (time.perf_counter() - t):,.0f} rows/s)", flush=True)
        conn.execute("VACUUM ANALYZE repair_record")
        conn.execute("VACUUM ANALYZE record_version")


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


HISTORY_SQL = sa.text("""
SELECT v.* FROM repair_record r
JOIN record_version v ON v.record_id = r.id AND v.version = r.current_version
                     AND v.received_at = r.current_received_at
WHERE r.vin = :vin AND r.status = 'active' ORDER BY r.settle_date DESC
""")


def history_latency(
    base: str, owner: dict[str, str], db_url: str, vin: str, samples: int
) -> dict[str, float]:
    http: list[float] = []
    with httpx.Client(base_url=base, headers=owner) as c:
        for _ in range(samples):
            t = time.perf_counter()
            r = c.get(f"/api/v1/owner/vehicles/{vin}/history")
            http.append(time.perf_counter() - t)
            assert r.status_code == 200 and len(r.json()["records"]) == 20, r.text
    sql: list[float] = []
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        for _ in range(samples):
            t = time.perf_counter()
            rows = conn.execute(HISTORY_SQL, {"vin": vin}).all()
            sql.append(time.perf_counter() - t)
            assert len(rows) == 20
    engine.dispose()
    return {
        "http_p50": pct(http, 50),
        "http_p99": pct(http, 99),
        "sql_p50": pct(sql, 50),
        "sql_p99": pct(sql, 99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies table sizes and upload counts")
    ap.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    ap.add_argument("--upload-only", action="store_true", help="the upload rates only, no history part")
    args = ap.parse_args()
    sizes = [max(int(1_000_000 * args.scale), 1000), max(int(10_000_000 * args.scale), 10_000)]
    n_single = max(int(2000 * min(args.scale, 1)), 200)
    n_batch = max(int(10_000 * min(args.scale, 1)), 1000)

    pg = PostgresCluster(PG_SETTINGS).start()
    minio = MinioServer().start()
    app = None
    try:
        db_url = pg.url
        dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"
        upgrade(db_url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT ensure_record_partitions((now() - interval '26 months')::date, 30)")
        app, base = start_app(db_url, minio)
        shop = register(base, db_url)
        print(f"== upload rate: records with 8 items + 8 parts, {args.clients} concurrent clients ==")
        single = asyncio.run(api_upload(base, shop, records(n_single, "S"), args.clients, 1))
        batch = asyncio.run(api_upload(base, shop, records(n_batch, "B"), max(args.clients // 4, 2), 100))
        copy = copy_rate(dsn, int(shop["enterprise_id"]), records(n_batch, "C"))
        print(f"  API, one record per request : {single:>9,.0f} records/s  ({n_single} records)")
        print(f"  API, batches of 100         : {batch:>9,.0f} records/s  ({n_batch} records)")
        print(f"  PostgreSQL COPY (baseline)  : {copy:>9,.0f} records/s  ({n_batch} records)")
        print(f"  ratio API/COPY              : single {single / copy:.1%}, batch {batch / copy:.1%}")
        if args.upload_only:
            return

        vin, owner = target_vin(base, shop, dsn)
        sample = make_record(items=8, parts=8)
        print("== history of a VIN with 20 repairs (ms) ==")
        for size in sizes:
            fill(dsn, int(shop["enterprise_id"]), 10_000_000_000, size, sample)
            lat = history_latency(base, owner, db_url, vin, 300)
            print(
                f"  {size:>11,} records: HTTP p50 {lat['http_p50']:.1f} p99 {lat['http_p99']:.1f}   "
                f"SQL baseline p50 {lat['sql_p50']:.1f} p99 {lat['sql_p99']:.1f}",
                flush=True,
            )
    finally:
        if app is not None:
            app.terminate()
            app.wait(10)
        minio.stop()
        pg.stop()


if __name__ == "__main__":
    main()
