"""Backup time, restore time and achieved RPO with pgBackRest for a database of 1M repair records,
next to a same-run baseline: pg_dump and pg_restore of the same database.

    .venv/bin/python bench/restore_bench.py                  # 1M records (~10 min on 2 cores)
    .venv/bin/python bench/restore_bench.py --records 100000 # quick run

Runs on the controller (as root; needs the `pgbackrest` package), no lab: a throwaway PostgreSQL 15
cluster (tests.support), migrated to the app's schema and filled with generated records the way
bench/ingest_bench.py does, with WAL archived through pgBackRest using the settings the backup
role deploys (zst compression, aes-256-cbc, 2 processes, asynchronous archiving, archive_timeout
60 s). The repository is a local directory: the lab's repositories (MinIO over TLS, the offsite
host over pgBackRest's TLS server) add network time, which the lab drill reports
(tests/lab/centralized/test_5_backup.py).

1. Baseline: pg_dump (directory format, 2 jobs) and pg_restore (2 jobs) into a new database (dropped
   again before the backup, so its WAL is not replayed later).
2. Full backup: wall time and repository size.
3. RPO: a writer commits a heartbeat row every 100 ms for --write-seconds; then the primary is lost
   (stopped with `immediate`, its data directory deleted). The newest backup is restored and WAL
   replayed from the repository; achieved RPO = last committed heartbeat − newest restored one.
   Restore time = pgBackRest restore + recovery until the cluster is promoted.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ingest_bench import fill  # noqa: E402

from app.db.migrate import upgrade  # noqa: E402
from tests.support.postgres import PG_BIN, PostgresCluster  # noqa: E402
from tests.support.samples import make_record  # noqa: E402

STANZA = "bench"
ARCHIVE_TIMEOUT = 60


def run_as(pg: PostgresCluster, *argv: str) -> float:
    """Run a command as the cluster's OS user; returns its wall time in seconds."""
    t = time.perf_counter()
    r = subprocess.run([*pg._prefix, *argv], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        detail = r.stderr.strip() or r.stdout.strip()
        raise SystemExit(f"{' '.join(argv[:3])}… failed ({r.returncode}): {detail}")
    return time.perf_counter() - t


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def write_config(work: Path, pg: PostgresCluster, repo: Path) -> Path:
    conf = work / "pgbackrest.conf"
    conf.write_text(
        "[global]\n"
        f"repo1-path={repo}\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={'x' * 8}bench{'y' * 19}\n"
        "repo1-retention-full=2\ncompress-type=zst\nprocess-max=2\nstart-fast=y\narchive-async=y\n"
        f"spool-path={work / 'spool'}\nlock-path={work / 'lock'}\nlog-path={work / 'log'}\n"
        "log-level-file=info\n"
        f"[{STANZA}]\npg1-path={pg.data}\npg1-port={pg.port}\npg1-socket-path={pg.dir}\npg1-user=postgres\n",
        encoding="utf-8")
    return conf


def heartbeat(dsn: str, seconds: float, out: dict[str, Any]) -> None:
    """Commit one row every 100 ms; record the time of the last one committed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            out["last"] = conn.execute("INSERT INTO bench_heartbeat (at) VALUES (clock_timestamp()) "
                                       "RETURNING at").fetchone()[0]  # type: ignore[index]
            out["count"] = out.get("count", 0) + 1
            time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="repair records in the database")
    ap.add_argument("--write-seconds", type=float, default=90,
                    help="seconds of heartbeat writes before the primary is lost")
    args = ap.parse_args()
    if not shutil.which("pgbackrest"):
        raise SystemExit("pgbackrest is not installed (apt-get install pgbackrest)")

    work = Path(tempfile.mkdtemp(prefix="pbox-restore-bench-"))
    repo = work / "repo"
    pg = PostgresCluster({"shared_buffers": "1GB", "max_wal_size": "4GB", "archive_mode": "on",
                          "archive_timeout": str(ARCHIVE_TIMEOUT)}, base=work)
    conf = write_config(work, pg, repo)
    pg.settings["archive_command"] = f"'pgbackrest --config={conf} --stanza={STANZA} archive-push %p'"
    restored: PostgresCluster | None = None
    try:
        for d in (repo, work / "spool", work / "lock", work / "log"):
            d.mkdir()
        subprocess.run(["chown", "-R", "pboxtest", str(work)], check=False)
        pg.start()
        # Archiving starts with the cluster: its background pusher may hold the archive lock a moment.
        for attempt in range(30):
            r = subprocess.run([*pg._prefix, "pgbackrest", f"--config={conf}", f"--stanza={STANZA}",
                                "stanza-create"], capture_output=True, text=True, check=False)
            if r.returncode == 0:
                break
            if attempt == 29:
                raise SystemExit(f"stanza-create failed: {r.stdout} {r.stderr}")
            time.sleep(1)
        dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"
        upgrade(pg.url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT ensure_record_partitions((now() - interval '26 months')::date, 30)")
            row = conn.execute("INSERT INTO enterprise (uscc, name, region_code) VALUES "
                               "('91320100MA1BENCH0X', '基准测试维修厂', '320100') RETURNING id").fetchone()
            ent = row[0]  # type: ignore[index]
            conn.execute("CREATE TABLE bench_heartbeat (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
        print(f"== filling {args.records:,} repair records ==", flush=True)
        fill(dsn, int(ent), 10_000_000_000, args.records, make_record(items=8, parts=8))
        with psycopg.connect(dsn) as conn:
            db_mb = conn.execute("SELECT pg_database_size('postgres') / 1e6").fetchone()[0]  # type: ignore[index]

        dump_dir = work / "dump"
        dump_s = run_as(pg, str(PG_BIN / "pg_dump"), "-h", str(pg.dir), "-p", str(pg.port), "-U", "postgres",
                        "-Fd", "-j", "2", "-f", str(dump_dir), "postgres")
        run_as(pg, str(PG_BIN / "createdb"), "-h", str(pg.dir), "-p", str(pg.port), "-U", "postgres", "copy")
        pg_restore_s = run_as(pg, str(PG_BIN / "pg_restore"), "-h", str(pg.dir), "-p", str(pg.port), "-U",
                              "postgres", "-j", "2", "-d", "copy", str(dump_dir))
        dump_mb = size_mb(dump_dir)
        run_as(pg, str(PG_BIN / "dropdb"), "-h", str(pg.dir), "-p", str(pg.port), "-U", "postgres", "copy")
        shutil.rmtree(dump_dir)

        backup_s = run_as(pg, "pgbackrest", f"--config={conf}", f"--stanza={STANZA}", "--type=full", "backup")
        repo_mb = size_mb(repo / "backup")

        print(f"== a heartbeat every 100 ms for {args.write_seconds:.0f} s, then the primary is lost ==",
              flush=True)
        beats: dict[str, Any] = {}
        writer = threading.Thread(target=heartbeat, args=(dsn, args.write_seconds, beats))
        writer.start()
        writer.join()
        run_as(pg, str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(pg.data)  # the primary is gone; only the repository is left

        restored = PostgresCluster({"archive_mode": "off"}, base=work)
        restored.data.mkdir(mode=0o700)
        subprocess.run(["chown", "-R", "pboxtest", str(restored.dir)], check=False)
        t0 = time.perf_counter()
        restore_s = run_as(pg, "pgbackrest", f"--config={conf}", f"--stanza={STANZA}",
                           f"--pg1-path={restored.data}", "restore")
        opts = (f"-c port={restored.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={restored.dir} -c archive_mode=off")
        run_as(restored, str(PG_BIN / "pg_ctl"), "-D", str(restored.data), "-o", opts, "-l",
               str(restored.dir / "log"), "-w", "-t", "3600", "start")
        rdsn = f"host=127.0.0.1 port={restored.port} user=postgres dbname=postgres"
        with psycopg.connect(rdsn, autocommit=True) as conn:
            while conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                time.sleep(0.2)
            total_s = time.perf_counter() - t0
            newest, kept = conn.execute("SELECT max(at), count(*) FROM bench_heartbeat").fetchone()  # type: ignore[misc]
            records = conn.execute("SELECT count(*) FROM repair_record").fetchone()[0]  # type: ignore[index]
        rpo = (beats["last"] - newest).total_seconds() if newest else float("nan")

        print(f"== {records:,} repair records, database {db_mb:,.0f} MB ==")
        print(f"  pgBackRest full backup      : {backup_s:7.1f} s   repository {repo_mb:,.0f} MB "
              f"(zst + aes-256-cbc)")
        print(f"  pg_dump -Fd -j2 (baseline)  : {dump_s:7.1f} s   dump {dump_mb:,.0f} MB")
        print(f"  pgBackRest restore          : {restore_s:7.1f} s   + WAL replay to promoted: "
              f"{total_s - restore_s:.1f} s   = restore time {total_s:.1f} s")
        print(f"  pg_restore -j2 (baseline)   : {pg_restore_s:7.1f} s")
        print(f"  achieved RPO after losing the primary: {rpo:.1f} s "
              f"({beats['count'] - kept} of {beats['count']} heartbeats lost; "
              f"archive_timeout {ARCHIVE_TIMEOUT} s)")
    finally:
        if restored is not None:
            restored.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
