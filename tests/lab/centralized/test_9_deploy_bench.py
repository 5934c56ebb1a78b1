"""After convergence: bench/deploy_bench.py's smoke run times the idempotent re-run of this
deployment (no lab of its own), so the deploy benchmark cannot rot. Figures are printed, never
asserted: a timing depends on the machine."""

import subprocess
import sys

from pbox.paths import REPO


def test_deploy_bench_smoke_prints_its_figures(centralized):
    r = subprocess.run([sys.executable, str(REPO / "bench/deploy_bench.py"), "--smoke"], cwd=REPO,
                       capture_output=True, text=True, check=False, timeout=1800)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "ping round" in r.stdout and "re-run" in r.stdout and "slowest tasks:" in r.stdout
