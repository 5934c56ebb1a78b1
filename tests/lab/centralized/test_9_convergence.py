"""Last in the package: a deploy against a broken host names it and changes nothing on the others;
once the host is back, a re-run converges and changes nothing at all (the second deploy of a deployed
site is a no-op). One deploy serves both proofs: the lab's time goes to deploys."""

from tests.lab import deploy_checks as checks


def test_broken_host_named_then_rerun_changes_nothing(centralized):
    centralized.timings["rerun"] = checks.broken_host_then_idempotent(centralized.prof, "app2")
