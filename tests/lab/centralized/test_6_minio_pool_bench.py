"""bench/minio_pool_bench.py's smoke run (issue 20 item 5) on this package's centralized deployment:
one round of restarting the MinIO pool; it must finish and print its figures (no bound on them).
After test_5_object_storage, before test_9_convergence: the pool is whole again when it returns."""

import re
import subprocess
import sys

from pbox.paths import REPO


def test_minio_pool_bench_runs_one_round(centralized):
    assert centralized.deploy.returncode == 0
    r = subprocess.run(
        [sys.executable, str(REPO / "bench/minio_pool_bench.py"), "--rounds", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=900,
    )
    print(r.stdout)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"round 1: whole pool restarted → write quorum +[\d.]+ s", r.stdout), r.stdout
    assert re.search(r"baseline: one host restarted → back in the pool +[\d.]+ s", r.stdout), r.stdout
