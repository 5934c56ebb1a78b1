"""bench/minio_pool_bench.py's smoke run (issue 20 item 5) on this package's centralized deployment:
one round of restarting the MinIO pool; it must finish and print its figures (no bound on them).
After test_5_object_storage, before test_9_convergence: the pool is whole again when it returns."""


from tests.support.benches import run_bench


def test_minio_pool_bench_runs_one_round(centralized):
    assert centralized.deploy.returncode == 0
    run_bench(
        "minio_pool_bench.py",
        ["--rounds", "1"],
        [
            r"round 1: whole pool restarted → write quorum +[\d.]+ s",
            r"baseline: one host restarted → back in the pool +[\d.]+ s",
        ],
    )
