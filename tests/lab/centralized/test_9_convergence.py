"""Last in the package: a second deploy changes nothing, and a broken host is named and converges."""

from tests.lab import deploy_checks as checks


def test_second_deploy_changes_nothing(centralized):
    centralized.timings["rerun"] = checks.assert_idempotent()


def test_broken_host_named_and_rerun_converges(centralized):
    checks.broken_host_deploy(centralized.prof, "app2")
