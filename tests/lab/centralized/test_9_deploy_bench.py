"""After convergence: bench/deploy_bench.py's smoke run times the idempotent re-run of this
deployment (no lab of its own), so the deploy benchmark cannot rot. Figures are printed, never
asserted: a timing depends on the machine."""

from tests.support.benches import run_bench


def test_deploy_bench_smoke_prints_its_figures(centralized):
    run_bench("deploy_bench.py", ["--smoke"], ["ping round", "re-run", "slowest tasks:"], timeout=1800)
