"""The multi-site profiles in the lab: 分布式 (a province plus two city systems) and 混合式 (a province
that also serves some cities, plus one city system). One deployment per profile, shared by its tests:
each site serves its own uploads through its own load balancer (verified HTTPS), the province's
replica has its records, the sites' nodes exchange records (a city's uploads reach the province; the
province sends a city the repairs of its cars made elsewhere; no site gets another city's cars),
services run, and a second deploy changes nothing."""

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
# The city a car's file belongs to, by its plate's prefix (GB/T 2260: 苏A 南京 320100, 苏E 苏州 320500).
HOME_CITY = {"苏A": "nanjing", "苏E": "suzhou"}
# Each site's shops lie in its region (a city node may speak for nothing else; the province for all).
SITE_REGION = {"province": "320102", "nanjing": "320102", "wuxi": "320202", "suzhou": "320505"}
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
    for site, (lb, replica) in sorted(SITES[profile].items()):
        rec = checks.smoke(str(prof.host(lb).address), profile, region_code=SITE_REGION[site])
        if replica:
            checks.replica_has_record(prof.host(replica), rec["record_id"])


def expected_sites(profile: str, site: str, plate: str) -> set[str]:
    """Where a record uploaded at `site` belongs: there, at the province (every city record goes up),
    and at the car's home city if that city runs its own system (the province sends it down)."""
    home = HOME_CITY[plate[:2]]
    return {site, "province"} | ({home} if home in SITES[profile] else set())


def test_records_flow_between_city_and_province(deployed):
    profile, prof, _, result, _ = deployed
    assert result.ok
    sites = SITES[profile]

    def count(site: str, vin: str) -> str:
        db = next(h for h in prof.hosts if f"site_{site}" in h.groups and "postgresql_primary" in h.groups)
        return host_run(db, "sudo", "-u", "postgres", "psql", "-d", "pbox", "-Atc",
                        f"SELECT count(*) FROM vehicle WHERE vin = '{vin}'")

    uploads = [(site, plate, checks.smoke(str(prof.host(lb).address), profile, plate=plate,
                                          region_code=SITE_REGION[site])["vin"])
               for site, (lb, _) in sorted(sites.items()) for plate in ("苏A12345", "苏E12345")]
    t0 = time.monotonic()
    for site, plate, vin in uploads:
        for where in sorted(expected_sites(profile, site, plate)):
            checks.wait_for(lambda where=where, vin=vin: count(where, vin) == "1", 120,
                            f"the {plate} car uploaded at {site} in {where}'s files")
    TIMINGS[profile]["exchange_all_arrived"] = time.monotonic() - t0
    # Everything due has arrived through the same relays: nothing went where it does not belong.
    for site, plate, vin in uploads:
        for where in sorted(set(sites) - expected_sites(profile, site, plate)):
            assert count(where, vin) == "0", (plate, "uploaded at", site, "found in", where)


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
