"""The hybrid (混合式) profile in the lab: one deployment shared by the tests; each site serves its own
uploads through its own load balancer (verified HTTPS), the province's replica has its records,
services run, and a second deploy changes nothing."""

import time

import pytest

from pbox.lab import lab
from tests.lab import deploy_checks as checks
from tests.lab.conftest import assert_down_leaves_nothing, bring_up, host_run

PROFILE = "hybrid"
# site -> (its load balancer host, its replica host or None)
SITES = {"province": ("pweb1", "pdb2"), "suzhou": ("suzhou1", None)}
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def deployed():
    prof, pids = bring_up(PROFILE)
    t0 = time.monotonic()
    result, out = checks.run_deploy()
    TIMINGS["fresh"] = time.monotonic() - t0
    yield prof, pids, result, out
    lab.down(lambda _: None)


def test_deploy_succeeds(deployed):
    _, _, result, out = deployed
    assert result.ok, out[-8000:]


@pytest.mark.parametrize("site", sorted(SITES))
def test_each_site_serves_its_own_uploads(deployed, site):
    prof, _, result, _ = deployed
    assert result.ok
    lb, replica = SITES[site]
    rec = checks.smoke(str(prof.host(lb).address), PROFILE)
    if replica:
        checks.replica_has_record(prof.host(replica), rec["record_id"])
    # The record is in this site's own database, and in no other site's.
    for other in SITES:
        db = next(h for h in prof.hosts if f"site_{other}" in h.groups and "postgresql_primary" in h.groups)
        n = host_run(db, "sudo", "-u", "postgres", "psql", "-d", "pbox", "-Atc",
                     f"SELECT count(*) FROM vehicle WHERE vin = '{rec['vin']}'")
        assert n == ("1" if other == site else "0"), (site, other, n)


def test_every_service_enabled_and_running(deployed):
    prof, _, result, _ = deployed
    assert result.ok
    checks.services_enabled_and_running(prof)


def test_second_deploy_changes_nothing(deployed):
    _, _, result, _ = deployed
    assert result.ok
    TIMINGS["rerun"] = checks.assert_idempotent()


def test_down_leaves_nothing(deployed, clean_controller):
    _, pids, _, _ = deployed
    print(f"\n{PROFILE} deploy timings: {TIMINGS}")
    assert_down_leaves_nothing(clean_controller, pids)
