"""The multi-site profiles in the lab: 分布式 (a province plus two city systems) and 混合式 (a province
that also serves some cities, plus one city system). One deployment per profile, shared by its tests:
each site serves its own uploads through its own load balancer (verified HTTPS), the province's
replica has its records, services run, and a second deploy changes nothing."""

import time

import pytest

from pbox.lab import lab
from tests.lab import deploy_checks as checks
from tests.lab.conftest import assert_down_leaves_nothing, bring_up, host_run

# profile -> site -> (its load balancer host, its replica host or None)
SITES = {
    "distributed": {"province": ("pweb1", "pdb2"), "nanjing": ("nanjing1", None), "wuxi": ("wuxi1", None)},
    "hybrid": {"province": ("pweb1", "pdb2"), "suzhou": ("suzhou1", None)},
}
TIMINGS: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module", params=sorted(SITES))
def deployed(request):
    """pytest runs every test of one profile, then tears its lab down, before the next profile."""
    profile = request.param
    prof, pids = bring_up(profile)
    t0 = time.monotonic()
    result, out = checks.run_deploy()
    TIMINGS[profile] = {"fresh": time.monotonic() - t0}
    yield profile, prof, pids, result, out
    lab.down(lambda _: None)


def test_deploy_succeeds(deployed):
    *_, result, out = deployed
    assert result.ok, out[-8000:]


def test_each_site_serves_its_own_uploads(deployed):
    profile, prof, _, result, _ = deployed
    assert result.ok
    sites = SITES[profile]
    for site, (lb, replica) in sorted(sites.items()):
        rec = checks.smoke(str(prof.host(lb).address), profile)
        if replica:
            checks.replica_has_record(prof.host(replica), rec["record_id"])
        # The record is in this site's own database, and in no other site's.
        for other in sites:
            db = next(h for h in prof.hosts
                      if f"site_{other}" in h.groups and "postgresql_primary" in h.groups)
            n = host_run(db, "sudo", "-u", "postgres", "psql", "-d", "pbox", "-Atc",
                         f"SELECT count(*) FROM vehicle WHERE vin = '{rec['vin']}'")
            assert n == ("1" if other == site else "0"), (site, other, n)


def test_every_service_enabled_and_running(deployed):
    _, prof, _, result, _ = deployed
    assert result.ok
    checks.services_enabled_and_running(prof)


def test_second_deploy_changes_nothing(deployed):
    profile, *_, result, _ = deployed
    assert result.ok
    TIMINGS[profile]["rerun"] = checks.assert_idempotent()


def test_down_leaves_nothing(deployed, clean_controller):
    profile, _, pids, _, _ = deployed
    print(f"\n{profile} deploy timings: {TIMINGS[profile]}")
    assert_down_leaves_nothing(clean_controller, pids)
