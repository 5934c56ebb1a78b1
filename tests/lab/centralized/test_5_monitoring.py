"""Monitoring on the centralized (集中式) deployment: every scrape target up, every dashboard panel's
query answered with data by the lab's Prometheus, and real faults firing the right alerts in
Alertmanager — PostgreSQL stopped on the replica db2 (started again, and the test waits until the
replica streams) and a disk filled up (emptied again); test_9_convergence runs after this module."""

import json
import time
from pathlib import Path

import httpx

from pbox.paths import REPO
from tests.lab import deploy_checks as checks
from tests.lab.centralized.conftest import PROFILE
from tests.lab.conftest import host_run

DASHBOARDS = sorted((REPO / "monitoring/dashboards").glob("*.json"))
JOBS = {"prometheus", "alertmanager", "node", "postgres", "app", "app-worker", "nginx", "minio",
        "blackbox-https", "blackbox-tls"}
REPLICA_UNIT = "postgresql@15-main"


def monitoring_host(prof):
    return next(h for h in prof.hosts if "monitoring" in h.groups)


def prom_query(prof, expr: str) -> list[dict]:
    url = f"http://{monitoring_host(prof).address}:9090/api/v1/query"
    r = httpx.get(url, params={"query": expr}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def active_alerts(prof, name: str) -> list[dict]:
    r = httpx.get(f"http://{monitoring_host(prof).address}:9093/api/v2/alerts",
                  params={"filter": f'alertname="{name}"', "active": "true", "silenced": "false"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_target_is_up(centralized):
    prof = centralized.prof
    url = f"http://{monitoring_host(prof).address}:9090/api/v1/targets"

    def targets() -> list[dict]:
        return httpx.get(url, params={"state": "active"}, timeout=10).json()["data"]["activeTargets"]

    def down(ts: list[dict]) -> list[tuple]:
        return [(t["labels"], t["lastError"]) for t in ts if t["health"] != "up"]

    try:
        found = checks.wait_for(lambda: (ts := targets()) and not down(ts) and ts, 90, "every target up")
    except AssertionError:
        raise AssertionError(down(targets())) from None
    assert {t["labels"]["job"] for t in found} == JOBS
    node = {t["labels"]["instance"] for t in found if t["labels"]["job"] == "node"}
    assert node == {h.name for h in prof.hosts}
    assert {t["labels"]["instance"] for t in found if t["labels"]["job"] == "postgres"} == {"db1", "db2"}


def test_every_dashboard_panel_has_data(centralized):
    prof = centralized.prof
    checks.smoke(str(prof.host("lb1").address), PROFILE)  # uploads counted, whatever ran before
    panels = [(d.name, p["title"], t["expr"]) for d in DASHBOARDS
              for p in json.loads(d.read_text(encoding="utf-8"))["panels"] for t in p["targets"]]
    assert len(panels) >= 25
    empty = []
    deadline = time.monotonic() + 90  # rates need two scrapes after the first sample
    for dash, title, expr in panels:
        while not prom_query(prof, expr) and time.monotonic() < deadline:
            time.sleep(1)
        if not prom_query(prof, expr):
            empty.append((dash, title, expr))
    assert not empty, f"panels without data: {empty}"


def test_replica_postgresql_stopped_fires_alerts_then_streams_again(centralized):
    prof = centralized.prof
    db1, db2 = prof.host("db1"), prof.host("db2")
    assert not active_alerts(prof, "PostgresqlDown")
    host_run(db2, "sudo", "systemctl", "stop", REPLICA_UNIT)
    t0 = time.monotonic()
    try:
        def fired(name: str, **labels: str):
            alerts = active_alerts(prof, name)
            return [a for a in alerts if all(a["labels"].get(k) == v for k, v in labels.items())]

        down = checks.wait_for(lambda: fired("PostgresqlDown", instance="db2"), 180, "PostgresqlDown for db2")
        centralized.timings["alert_postgresql_down"] = time.monotonic() - t0
        assert down[0]["labels"]["severity"] == "critical"
        assert "ops-critical" in {r["name"] for r in down[0]["receivers"]}
        checks.wait_for(lambda: fired("PostgresqlReplicaNotStreaming", instance="db1", slot_name="db2"), 180,
                        "PostgresqlReplicaNotStreaming for the slot db2 on db1")
        centralized.timings["alert_replica_not_streaming"] = time.monotonic() - t0
        assert not fired("PostgresqlDown", instance="db1")
    finally:
        host_run(db2, "sudo", "systemctl", "start", REPLICA_UNIT)
    checks.wait_for(
        lambda: host_run(db1, "sudo", "-u", "postgres", "psql", "-Atc",
                         "SELECT state FROM pg_stat_replication WHERE application_name = 'db2'",
                         check=False) == "streaming", 120, "db2 streaming from db1 again")
    checks.wait_for(lambda: not active_alerts(prof, "PostgresqlDown"), 120, "PostgresqlDown resolved")
    checks.wait_for(lambda: not active_alerts(prof, "PostgresqlReplicaNotStreaming"), 120,
                    "PostgresqlReplicaNotStreaming resolved")
    print(f"\nmonitoring: alert timings {centralized.timings}")


def test_a_filling_disk_fires_disk_filling_then_resolves(centralized):
    """The offsite backup repository on lb1 is a 1 GiB disk of its own (lab.yml): fill it to 95 %."""
    prof = centralized.prof
    lb1 = prof.host("lb1")
    mount, fill = "/var/lib/pgbackrest", "/var/lib/pgbackrest/pbox-test-fill"
    size, avail = map(int, host_run(lb1, "df", "-B1", "--output=size,avail", mount).split()[-2:])
    host_run(lb1, "sudo", "fallocate", "-l", str(avail - size // 20), fill)
    t0 = time.monotonic()

    def firing() -> list[dict]:
        return [a for a in active_alerts(prof, "DiskFilling")
                if (a["labels"].get("instance"), a["labels"].get("mountpoint")) == ("lb1", mount)]

    try:
        alert = checks.wait_for(firing, 180, f"DiskFilling for {mount} on lb1")
        centralized.timings["alert_disk_filling"] = time.monotonic() - t0
        assert alert[0]["labels"]["severity"] == "warning"
    finally:
        host_run(lb1, "sudo", "rm", "-f", fill)
    checks.wait_for(lambda: not firing(), 120, "DiskFilling resolved")


def test_alert_overrides_reach_the_lab_but_not_the_repository(centralized):
    """The lab's short `for:` is in the deployed rules; the repository keeps production values."""
    lb = monitoring_host(centralized.prof)
    deployed = host_run(lb, "sudo", "cat", "/etc/prometheus/rules/postgresql.yml")
    assert "for: 10s" in deployed and "for: 1m" not in deployed
    assert "for: 1m" in Path(REPO / "monitoring/rules/postgresql.yml").read_text(encoding="utf-8")
