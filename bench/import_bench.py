"""Bulk import rate (`app-admin import`, app.services.imports) beside PostgreSQL COPY of the same
records, in the same run.

    .venv/bin/python bench/import_bench.py               # 20 000 records with 8 items + 8 parts
    .venv/bin/python bench/import_bench.py --scale 0.01  # 200 records: a smoke run in seconds

On its own throwaway PostgreSQL 15 cluster (tests.support, fsync off as in bench/ingest_bench.py): a
JSON Lines file of records is imported for one enterprise through the import service (validation,
ingest, progress row and audit event per batch, as the command does; the progress bar is left out),
then the same records with fresh settlement numbers are written straight into the same tables with
COPY (bench/ingest_bench.copy_rate: vehicle, record head, version). Prints records/s for each and
the ratio (goal: import ≥ 80 % of COPY).
"""

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.db.migrate import upgrade  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services import imports  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.ingest_bench import PG_SETTINGS, copy_rate, records  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the record count (20 000)")
    ap.add_argument("--batch", type=int, default=500, help="records per import transaction")
    args = ap.parse_args()
    n = max(int(20_000 * args.scale), 200)
    pg = PostgresCluster(PG_SETTINGS).start()
    try:
        dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"
        upgrade(pg.url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            region = conn.execute("SELECT code FROM region WHERE code LIKE '32%' ORDER BY code").fetchone()
            ent = conn.execute(
                "INSERT INTO enterprise (uscc, name, region_code)"
                " VALUES ('91320100BENCH0000X', '基准测试', %s) RETURNING id",
                (region[0],),  # type: ignore[index]
            ).fetchone()[0]  # type: ignore[index]
        settings = Settings(
            database_url=pg.url,
            s3_endpoint="http://127.0.0.1:9",  # never reached: an import stores no files
            s3_access_key="bench",
            s3_secret_key="bench-" + "s" * 32,
            secret_key=secrets.token_hex(32),
            field_key=secrets.token_hex(32),
            audit_key=secrets.token_hex(32),
        )
        rt = Runtime.from_settings(settings)
        with tempfile.TemporaryDirectory(prefix="pbox-import-bench-") as tmp:
            path = Path(tmp) / "records.jsonl"
            with path.open("w", encoding="utf-8") as f:
                for rec in records(n, "I"):
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            who = imports.Attribution(enterprise_uscc="91320100BENCH0000X")
            start = time.perf_counter()
            s = imports.run(rt, path, who, "bench", Path(tmp) / "rejects.tsv", args.batch)
            imported = n / (time.perf_counter() - start)
            assert (s.created, s.rejected) == (n, 0), s
        rt.close()
        copy = copy_rate(dsn, ent, records(n, "C"))
        print(f"== bulk import: {n} records with 8 items + 8 parts, batches of {args.batch} ==")
        print(f"  app-admin import (JSON Lines) : {imported:>9,.0f} records/s")
        print(f"  PostgreSQL COPY (baseline)    : {copy:>9,.0f} records/s")
        print(f"  ratio import/COPY             : {imported / copy:.1%}  (goal ≥ 80 %)")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
