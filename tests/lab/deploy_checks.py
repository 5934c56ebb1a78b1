"""Checks shared by the deployment tests of every profile: one site's smoke test through its load
balancer, the replica, services, idempotence, and a deploy against a broken host."""

import hashlib
import io
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from pbox import deploy
from pbox.lab import lab
from pbox.lab.profile import load_profile
from tests.lab.conftest import host_run
from tests.support.samples import make_enterprise, make_record, make_vin, roster_csv, roster_row

SERVICES = {
    "loadbalancer": ["nginx"],
    "app": ["app-web", "app-worker"],
    "postgresql": ["postgresql@15-main"],
    "object_storage": ["minio"],
    "monitoring": ["prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"],
}


def ca_file(profile: str) -> Path:
    return Path(f"/var/lib/pbox/pki/{profile}/ca.crt")


def run_deploy(limit: str | None = None) -> tuple[deploy.DeployResult, str]:
    buf = io.StringIO()
    result = deploy.run(None, limit=limit, out=Console(file=buf, width=200))
    return result, buf.getvalue()


def problems(out: str) -> str:
    """The lines of a deploy's output that say what went wrong, with the task before each."""
    lines = out.splitlines()
    keep = [f"{lines[i - 1]}\n{ln}" for i, ln in enumerate(lines) if "FAILED" in ln or "UNREACHABLE" in ln]
    return "\n".join(keep)[-5000:] or out[-3000:]


def changed_tasks(out: str) -> str:
    """Each task of a deploy's output that changed a host, with the hosts it changed."""
    task, found = "", []
    for ln in out.splitlines():
        if ln.lstrip().startswith("TASK "):
            task = ln.strip()
        elif ln.strip().startswith("changed:"):
            found.append(f"{task}: {ln.strip()}")
    return "\n".join(found)[-5000:] or out[-3000:]


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


def app_host_behind(profile: str, lb_address: str):
    """An app host of the load balancer's site (its database is the one the shop registers in)."""
    prof = load_profile(profile)
    lb = next(h for h in prof.hosts if str(h.address) == lb_address)
    sites = [g for g in lb.groups if g.startswith("site_")]
    return next(h for h in prof.hosts if "app" in h.groups and all(s in h.groups for s in sites))


def licence(app_host, enterprise: dict) -> None:
    """Put the enterprise on its node's licence roster as the operator does (`pbox-admin roster
    import` of a CSV file), so its registration is approved at once (a self-registered one waits)."""
    path = f"/tmp/roster-{enterprise['uscc']}.csv"
    script = f"printf '%s' {shlex.quote(roster_csv([roster_row(enterprise)]))} > {path}"
    host_run(app_host, "sh", "-c", script)
    host_run(app_host, "sudo", "pbox-admin", "roster", "import", path)
    host_run(app_host, "rm", "-f", path)


def _ready(c: httpx.Client) -> bool:
    try:
        return c.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def smoke(lb_address: str, profile: str, plate: str = "苏A12345", region_code: str = "320102") -> dict:
    """Through the load balancer over verified HTTPS: register a licensed shop of `region_code`, upload
    a record of a car with this plate, read it back, attach a file and fetch it from object storage.
    Returns the record's id and the car's VIN. (A city's node speaks for its own region's shops only:
    peers refuse anything else it sends, docs/exchange.md §4.1.)"""
    enterprise = {**make_enterprise(), "region_code": region_code}
    licence(app_host_behind(profile, lb_address), enterprise)
    with httpx.Client(base_url=f"https://{lb_address}", verify=str(ca_file(profile)), http2=False,
                      timeout=30) as c:
        # the site answers through the load balancer before the first write (a 502 was seen here
        # right after a deploy on a heavily loaded controller; the wait is for a condition, bounded)
        wait_for(lambda: _ready(c), 120, f"/readyz through {lb_address}")
        r = c.post("/api/v1/collection/enterprises", json=enterprise)
        assert r.status_code == 201 and r.json()["status"] == "active", r.text
        cred = r.json()
        r = c.post("/api/v1/collection/token", json={"key_id": cred["key_id"], "secret": cred["secret"]})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        vin = make_vin()
        settlement = f"LAB-{int(time.time() * 1000)}"
        r = c.post("/api/v1/collection/records", json=make_record(settlement, vin, plate=plate), headers=auth)
        assert r.status_code == 200, r.text
        res = r.json()
        assert res["status"] == "accepted", res
        rid = res["record_id"]
        got = c.get(f"/api/v1/collection/records/{rid}", headers=auth)
        assert got.status_code == 200 and got.json()["vin"] == vin, got.text
        data = b"%PDF-1.4\n% pbox lab attachment\n" + settlement.encode() + b"\n%%EOF\n"
        r = c.post(f"/api/v1/collection/records/{rid}/attachments", headers=auth,
                   files={"file": ("settlement.pdf", data, "application/pdf")},
                   data={"kind": "settlement", "sha256": hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
        att = r.json()
        att_id = att["id"]
        r = c.get(f"/api/v1/collection/records/{rid}/attachments/{att_id}", headers=auth)
        assert r.status_code == 200 and r.content == data, (r.status_code, r.text[:300])
    return {"record_id": rid, "vin": vin}


def replica_has_record(replica, record_id: int) -> None:
    def seen() -> bool:
        out = host_run(replica, "sudo", "-u", "postgres", "psql", "-d", "pbox", "-Atc",
                       f"SELECT count(*) FROM repair_record WHERE id = {int(record_id)}", check=False)
        return out.strip() == "1"

    wait_for(seen, 30, f"record {record_id} on the replica {replica.name}")
    assert host_run(replica, "sudo", "-u", "postgres", "psql", "-Atc", "SELECT pg_is_in_recovery()") == "t"


def services_enabled_and_running(prof) -> None:
    for host in prof.hosts:
        units = ["chrony"] + [u for g in host.groups for u in SERVICES.get(g, [])]
        for unit in units:
            state = host_run(host, "systemctl", "is-active", unit, check=False)
            enabled = host_run(host, "systemctl", "is-enabled", unit, check=False)
            assert (state, enabled) == ("active", "enabled"), f"{host.name}: {unit} is {state}/{enabled}"


def assert_idempotent() -> float:
    t0 = time.monotonic()
    result, out = run_deploy()
    assert result.ok, problems(out)
    changed = {h: n for h, n in result.stats.get("changed", {}).items() if n}
    assert not changed, f"second deploy changed something: {changed}\n{changed_tasks(out)}"
    return time.monotonic() - t0


def broken_host_then_idempotent(prof, victim: str) -> float:
    """Cut a deployed host off the lab network: the deploy fails naming it and changes nothing on
    the others. Once it is back, a re-run converges and changes nothing anywhere: deploying a
    deployed site is a no-op. Returns the time of that re-run."""
    link = prof.host(victim).link
    subprocess.run(["ip", "link", "set", link, "down"], check=True)
    try:
        result, out = run_deploy()
        assert not result.ok
        assert victim in result.stats.get("dark", {}), result.stats
        assert any("UNREACHABLE" in ln and victim in ln for ln in out.splitlines()), out[-3000:]
        assert not {h: n for h, n in result.stats.get("failures", {}).items() if n}, result.stats
        changed = {h: n for h, n in result.stats.get("changed", {}).items() if n}
        assert not changed, f"the deploy without {victim} changed the others: {changed}\n{changed_tasks(out)}"
    finally:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
    # Reachable again the way Ansible reaches it (same SSH options and connection sharing).
    ping = [str(Path(sys.executable).parent / "ansible"), "-i", str(lab.LAB_INVENTORY / "hosts.yml"), victim,
            "-m", "ping"]
    wait_for(lambda: subprocess.run(ping, capture_output=True, timeout=60, check=False).returncode == 0, 120,
             f"{victim} reachable again")
    return assert_idempotent()
