"""Exchange latency and catch-up, next to the raw upload rate of the same run.

    .venv/bin/python bench/exchange_bench.py                     # defaults below
    .venv/bin/python bench/exchange_bench.py --outage 600        # the full 10-minute outage

Four real nodes as in tests/app (tests.support.federation): ministry, provinces A (320000) and B
(330000), a city of A; each app-web over HTTPS with mutual TLS and an app-worker relay, on its own
database of one throwaway PostgreSQL cluster. A shop in Hangzhou (province B) repairs Nanjing cars
(苏A), so each record travels B → ministry → A.

1. Raw upload rate: batches of 100 to B's collection API as fast as one client can — the baseline.
2. End-to-end delay at a steady upload rate (--rate records/s for --steady seconds): for every record,
   the time from its commit at B to its commit at A through the ministry (both `received_at`, same
   clock), p50/p99/max.
3. Catch-up: the ministry's app-web is stopped for --outage seconds while B keeps uploading at the
   steady rate; then restarted. Catch-up rate = backlog / (time from the ministry being back to the
   last backlog record committed at A), beside the upload rate it must outrun.

The default outage is 60 s, not the 10 minutes of the issue, to keep the run short on a shared
2-core machine; backlog and rates scale linearly with it (pass --outage 600 for the real figure).
"""

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.app.exchange_helpers import LAYOUT, MINISTRY, PROV_A, PROV_B, Shop  # noqa: E402
from tests.support.federation import Federation, wait_until  # noqa: E402
from tests.support.minio import MinioServer  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.samples import make_record, make_vin  # noqa: E402


def records(n: int, tag: str) -> list[dict]:
    return [
        make_record(
            f"B-{tag}-{uuid.uuid4().hex[:10].upper()}",
            make_vin(),
            plate=f"苏A{i % 100000:05d}",
            items=3,
            parts=3,
        )
        for i in range(n)
    ]


def steady(shop: Shop, rate: float, seconds: float, tag: str) -> list[str]:
    """Upload at `rate` records/s in 4 batches a second; returns the settlement numbers."""
    sent: list[str] = []
    tick = 0.25
    per_tick = max(1, round(rate * tick))
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        batch = records(per_tick, tag)
        shop.batch(batch)
        sent += [r["settlement_no"] for r in batch]
        n += 1
        time.sleep(max(0.0, start + n * tick - time.monotonic()))
    return sent


def committed(fed: Federation, node: str, uscc: str, nos: list[str]) -> dict[str, float]:
    eng = sa.create_engine(fed.nodes[node].db_url)
    with eng.connect() as c:
        rows = c.execute(
            sa.text("""SELECT v.settlement_no, extract(epoch FROM v.received_at) FROM record_version v
                       JOIN enterprise e ON e.id = v.enterprise_id
                       WHERE e.uscc = :u AND v.settlement_no = ANY(:n)"""),
            {"u": uscc, "n": nos},
        ).all()
    eng.dispose()
    return {no: float(t) for no, t in rows}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0, help="steady upload rate, records/s")
    ap.add_argument("--steady", type=float, default=30.0, help="seconds of steady upload")
    ap.add_argument("--outage", type=float, default=60.0, help="seconds the ministry is down")
    ap.add_argument("--burst", type=int, default=2000, help="records for the raw upload rate")
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="pbox-exbench-"))
    pg = PostgresCluster().start()
    minio = MinioServer().start()
    fed = Federation(
        pg.url,
        {"endpoint": minio.endpoint, "access_key": minio.access_key, "secret_key": minio.secret_key},
        base / "fed",
        LAYOUT,
    )
    try:
        print("starting 4 nodes …", flush=True)
        fed.start()
        shop = Shop(fed, PROV_B, "330100")

        # 1. raw upload rate at B (the relay ships alongside, as in production)
        burst = records(args.burst, "raw")
        t = time.perf_counter()
        for i in range(0, len(burst), 100):
            shop.batch(burst[i : i + 100])
        raw_rate = len(burst) / (time.perf_counter() - t)
        burst_nos = [r["settlement_no"] for r in burst]
        wait_until(lambda: len(committed(fed, PROV_A, shop.uscc, burst_nos)) == len(burst), 600, "burst at A")

        # 2. steady-rate end-to-end delay B → ministry → A
        sent = steady(shop, args.rate, args.steady, "steady")
        wait_until(lambda: len(committed(fed, PROV_A, shop.uscc, sent)) == len(sent), 300, "steady at A")
        at_b, at_a = committed(fed, PROV_B, shop.uscc, sent), committed(fed, PROV_A, shop.uscc, sent)
        delays = [at_a[n] - at_b[n] for n in sent]

        # 3. outage of the ministry with a backlog, then catch-up
        ministry = fed.nodes[MINISTRY]
        ministry.stop_web(kill=True)
        backlog = steady(shop, args.rate, args.outage, "outage")
        ministry.start_web(fed.ca.cert_file)
        back = time.time()
        wait_until(lambda: len(committed(fed, PROV_A, shop.uscc, backlog)) == len(backlog), 1800, "backlog")
        last = max(committed(fed, PROV_A, shop.uscc, backlog).values())
        catch_up = len(backlog) / max(last - back, 1e-6)

        print()
        print(f"raw upload rate at province B (batches of 100, 1 client):  {raw_rate:8.1f} records/s")
        steady_rate = len(sent) / args.steady
        print(
            f"steady upload rate:                                        {steady_rate:8.1f} records/s "
            f"({len(sent)} records)"
        )
        print(
            f"end-to-end delay B → ministry → A:  p50 {pct(delays, 50) * 1000:7.0f} ms   "
            f"p99 {pct(delays, 99) * 1000:7.0f} ms   max {max(delays) * 1000:7.0f} ms   "
            f"mean {statistics.mean(delays) * 1000:7.0f} ms"
        )
        print(f"outage of the ministry: {args.outage:.0f} s, backlog {len(backlog)} records")
        print(
            f"catch-up rate after the outage:                            {catch_up:8.1f} records/s "
            f"(drained in {last - back:.1f} s)"
        )
    finally:
        fed.stop()
        minio.stop()
        pg.stop()


if __name__ == "__main__":
    main()
