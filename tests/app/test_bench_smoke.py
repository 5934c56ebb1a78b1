"""Benchmarks cannot rot (issue 20 item 5): each benchmark in bench/ runs here at a tiny scale and
must finish (exit 0) and print its figures. No figure is checked against a bound: timings belong to
the full runs, which stay manual (see each bench's docstring). The lab benchmarks run in the lab
lanes on the labs those lanes already bring up (LAB_SMOKES below names where)."""

import shutil
from pathlib import Path

import pytest

from tests.support.benches import run_bench

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"

# bench file → (arguments of its smoke run, what its output must show: a figure beside its label)
SMOKES: dict[str, tuple[list[str], list[str]]] = {
    "ingest_bench.py": (
        ["--smoke"],
        [
            r"API, batches of 100 +: +[\d,]+ records/s",
            r"PostgreSQL COPY \(baseline\) +: +[\d,]+ records/s",
            r"HTTP p50 [\d.]+ p99 [\d.]+ \| bare SQL p50 [\d.]+ p99 [\d.]+",
            r"partitions in plan \d+",
            r"32 concurrent readers, durable commits: audited [\d,]+ req/s .* ratio [\d.]+",
        ],
    ),
    "portal_bench.py": (
        ["--scale", "0.001", "--runs", "2"],
        [r"aggregating \d+ days .*: [\d.]+ s", r"page server time vs\. the service call"],
    ),
    "exchange_bench.py": (
        ["--rate", "5", "--steady", "2", "--outage", "3", "--burst", "100"],
        [
            r"raw upload rate at province B .*: +[\d.]+ records/s",
            r"end-to-end delay B → ministry → A: +p50 +\d+ ms",
            r"catch-up rate after the outage: +[\d.]+ records/s",
        ],
    ),
    "restore_bench.py": (
        ["--records", "2000", "--write-seconds", "2"],
        [
            r"pgBackRest full backup +: +[\d.]+ s",
            r"pg_dump -Fd -j2 \(baseline\) +: +[\d.]+ s",
            # nan at this size: 2 s of heartbeats fit in a WAL segment not archived yet (archive_timeout 60 s)
            r"achieved RPO after losing the primary: (nan|[\d.]+) s",
        ],
    ),
    "import_bench.py": (["--scale", "0.001"], [r"records/s"]),
    "crypto_bench.py": ([], [r"sign/enc /s"]),
}

# The lab benchmarks' smoke runs, in the lab lanes (tests/static/test_lab_lanes.py): each on a lab its
# lane deploys anyway. deploy_bench deploys whole profiles: its smoke run belongs to the deploy lane.
LAB_SMOKES = {
    "lab_bench.py": "tests/lab/test_lab_hosts.py",
    "minio_pool_bench.py": "tests/lab/centralized/test_6_minio_pool_bench.py",
    "deploy_bench.py": "tests/lab/centralized/test_9_deploy_bench.py",
}


def test_every_benchmark_has_a_smoke_run():
    benches = {p.name for p in BENCH.glob("*_bench.py")}
    assert benches <= set(SMOKES) | set(LAB_SMOKES), benches - set(SMOKES) - set(LAB_SMOKES)
    for name, test_file in LAB_SMOKES.items():
        assert f"bench/{name}" in (REPO / test_file).read_text(encoding="utf-8"), (name, test_file)


@pytest.mark.parametrize("bench", sorted(SMOKES))
def test_bench_smoke(bench: str) -> None:
    if bench == "restore_bench.py" and not shutil.which("pgbackrest"):
        pytest.fail("pgbackrest is not installed: scripts/bootstrap-controller.sh installs it")
    run_bench(bench, *SMOKES[bench])
