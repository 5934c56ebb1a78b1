"""Object storage and transport on the centralized deployment: MinIO as one pool erasure-coded
across four hosts that survives one of them down; TLS on every hop (load balancer → app, app → DB,
app → MinIO); passive health checks and the guarded rolling restart of the app servers.

Everything stopped here is started again before the test ends (test_9_convergence runs after)."""

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pbox.lab import lab
from pbox.paths import REPO
from tests.lab import deploy_checks as checks
from tests.lab.centralized.conftest import PROFILE
from tests.lab.conftest import host_run
from tests.support.samples import make_enterprise, make_record, make_vin

STORAGE_HOSTS = ["db1", "db2", "app1", "app2"]
SECRETS = Path(f"/var/lib/pbox/secrets/{PROFILE}/all")
APP_TLS_NAME = "app.all.pbox.internal"


def _minio_admin(endpoint: str):
    """The role's own MinIO client (SigV4, admin API), as root of the pool."""
    path = REPO / "roles/object_storage/library/pbox_minio.py"
    spec = importlib.util.spec_from_file_location("pbox_minio", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    root = (SECRETS / "minio_root").read_text().split()[0]
    return mod.Minio(endpoint, "pbox-root", root, str(checks.ca_file(PROFILE)))


def _admin_info(prof, via: str = "db1") -> dict:
    admin = _minio_admin(f"https://{prof.host(via).address}:9000")
    status, body = admin.request("GET", "/minio/admin/v3/info")
    assert status == 200, body[:300]
    return json.loads(body)


def _cluster_health(prof, via: str) -> httpx.Response:
    return httpx.get(f"https://{prof.host(via).address}:9000/minio/health/cluster",
                     verify=str(checks.ca_file(PROFILE)), timeout=15)


class Shop:
    """A registered shop talking to the portal through the load balancer."""

    def __init__(self, prof) -> None:
        self.c = httpx.Client(base_url=f"https://{prof.host('lb1').address}",
                              verify=str(checks.ca_file(PROFILE)), timeout=30)
        enterprise = make_enterprise()
        checks.licence(checks.app_host_behind(PROFILE, str(prof.host("lb1").address)), enterprise)
        r = self.c.post("/api/v1/collection/enterprises", json=enterprise)
        assert r.status_code == 201 and r.json()["status"] == "active", r.text
        cred = r.json()
        r = self.c.post("/api/v1/collection/token", json={"key_id": cred["key_id"], "secret": cred["secret"]})
        assert r.status_code == 200, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def record(self) -> int:
        settlement = f"OS-{time.time_ns()}"
        r = self.c.post("/api/v1/collection/records", json=make_record(settlement, make_vin()),
                        headers=self.auth)
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        return r.json()["record_id"]

    def attach(self, rid: int, data: bytes) -> int:
        r = self.c.post(f"/api/v1/collection/records/{rid}/attachments", headers=self.auth,
                        files={"file": ("settlement.pdf", data, "application/pdf")},
                        data={"kind": "settlement", "sha256": hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def fetch(self, rid: int, att: int) -> bytes:
        r = self.c.get(f"/api/v1/collection/records/{rid}/attachments/{att}", headers=self.auth)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r.content


def _pdf(tag: str) -> bytes:
    return b"%PDF-1.4\n% pbox erasure test\n" + tag.encode() + os.urandom(2048).hex().encode() + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def shop(centralized):
    s = Shop(centralized.prof)
    yield s
    s.c.close()


# --- MinIO: one pool, erasure-coded over four drives -------------------------------------------

def test_each_storage_host_has_its_own_data_filesystem(centralized):
    for name in STORAGE_HOSTS:
        h = centralized.prof.host(name)
        assert host_run(h, "findmnt", "-n", "-o", "TARGET", "/srv/minio") == "/srv/minio", name
        devs = host_run(h, "stat", "-c", "%d", "/", "/srv/minio").split()
        assert devs[0] != devs[1], f"{name}: /srv/minio is on the root filesystem"


def test_the_pool_is_erasure_coded_over_four_drives(centralized):
    prof = centralized.prof
    info = _admin_info(prof)
    backend = info["backend"]
    assert backend["backendType"] == "Erasure", backend
    assert (backend["onlineDisks"], backend["offlineDisks"]) == (4, 0), backend
    assert backend["standardSCParity"] == 2 and backend["totalDrivesPerSet"] == [4], backend
    drives = [d for s in info["servers"] for d in s.get("drives", [])]
    assert sorted(d["endpoint"] for d in drives) == sorted(
        f"https://{n}:9000/srv/minio" for n in STORAGE_HOSTS), drives
    assert {d["state"] for d in drives} == {"ok"}
    r = _cluster_health(prof, "app2")
    assert r.status_code == 200 and r.headers["x-minio-write-quorum"] == "3", r.headers


def test_an_object_survives_one_minio_host_down(centralized, shop):
    """Stop MinIO on one host of the pool: an attachment stored before is read back through the
    load balancer, a new one is stored; then the host comes back and the pool is whole again."""
    prof = centralized.prof
    rid = shop.record()
    before = _pdf("before")
    att_before = shop.attach(rid, before)
    # An app server's MinIO: its certificates live beside the app's configuration (/etc/pbox).
    victim = prof.host("app2")
    host_run(victim, "sudo", "systemctl", "stop", "minio")
    try:
        checks.wait_for(lambda: _admin_info(prof)["backend"]["offlineDisks"] == 1, 120,
                        "the pool to see app2 down")
        assert shop.fetch(rid, att_before) == before
        during = _pdf("during")
        att_during = shop.attach(rid, during)
        assert shop.fetch(rid, att_during) == during
    finally:
        t0 = time.monotonic()
        host_run(victim, "sudo", "systemctl", "start", "minio")
        checks.wait_for(lambda: _admin_info(prof)["backend"]["onlineDisks"] == 4, 180,
                        "app2 back in the pool")
        print(f"\nMinIO: app2 back in the pool {time.monotonic() - t0:.1f} s after its start")
    checks.wait_for(lambda: all(_cluster_health(prof, n).status_code == 200 for n in STORAGE_HOSTS), 120,
                    "every host of the pool has write quorum again")
    assert shop.fetch(rid, att_during) == during


# --- Transport: TLS on every hop -----------------------------------------------------------------

# Run on the load balancer: the app port is open to it (and to monitoring) only, not to the controller.
_UPSTREAM_PROBE = """
import socket, ssl, sys, urllib.error, urllib.request
addr, name, app_name, ca = sys.argv[1:]
try:
    urllib.request.urlopen(f"http://{addr}:8000/healthz", timeout=10)
    print("plain HTTP answered")
except (urllib.error.URLError, ConnectionError, OSError):
    pass
ctx = ssl.create_default_context(cafile=ca)
if urllib.request.urlopen(f"https://{addr}:8000/readyz", context=ctx, timeout=10).status != 200:
    print("readyz not 200")
for server_name in (name, app_name):
    with socket.create_connection((addr, 8000), timeout=10) as raw, \\
            ctx.wrap_socket(raw, server_hostname=server_name) as t:
        if t.version() not in ("TLSv1.2", "TLSv1.3"):
            print("old protocol", t.version())
old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
old.load_verify_locations(ca)
old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
old.set_ciphers("ALL:@SECLEVEL=0")
try:
    with socket.create_connection((addr, 8000), timeout=10) as s:
        old.wrap_socket(s, server_hostname=name)
    print("TLS 1.1 accepted")
except ssl.SSLError:
    pass
print("ok")
"""


def test_app_servers_speak_https_only(centralized):
    """The load balancer's upstreams: plain HTTP to an app server fails; HTTPS verifies against
    the internal CA, for the server's address, host name and the site's app name; TLS 1.1 is refused."""
    prof = centralized.prof
    for name in ("app1", "app2"):
        addr = str(prof.host(name).address)
        out = host_run(prof.host("lb1"), "sudo", "python3", "-c", _UPSTREAM_PROBE, addr, name, APP_TLS_NAME,
                       "/etc/pbox/pki/ca.crt")
        assert out == "ok", (name, out)
    # … and the controller (the admin network) does not reach the app port at all.
    with pytest.raises(OSError):
        socket.create_connection((str(prof.host("app1").address), 8000), timeout=5).close()


def test_load_balancer_verifies_the_app_servers(centralized):
    conf = host_run(centralized.prof.host("lb1"), "sudo", "nginx", "-T")
    for line in ("proxy_pass https://pbox_app;", "proxy_ssl_verify on;", f"proxy_ssl_name {APP_TLS_NAME};",
                 "proxy_ssl_trusted_certificate /etc/pbox/pki/ca.crt;"):
        assert line in conf, line


def test_app_database_connections_are_tls(centralized, shop):
    shop.record()  # the app servers have connections open
    db1 = centralized.prof.host("db1")
    out = host_run(db1, "sudo", "-u", "postgres", "psql", "-Atc",
                   "SELECT count(*), bool_and(s.ssl), string_agg(DISTINCT s.version, ',')"
                   " FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'pbox_app'")
    count, all_ssl, versions = out.split("|")
    assert int(count) > 0 and all_ssl == "t" and versions == "TLSv1.3", out


def test_app_object_store_endpoint_is_verified_https(centralized):
    app1 = centralized.prof.host("app1")
    lines = host_run(app1, "sudo", "cat", "/etc/pbox/app.env").splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    assert env["PBOX_S3_ENDPOINT"].strip("'").startswith("https://"), env["PBOX_S3_ENDPOINT"]
    assert env["AWS_CA_BUNDLE"].strip("'") == "/etc/pbox/pki/ca.crt"
    # MinIO answers plain HTTP with an error: the app's working uploads are TLS.
    r = httpx.get(f"http://{centralized.prof.host('db1').address}:9000/minio/health/live", timeout=10)
    assert r.status_code == 400 and b"HTTPS" in r.content


# --- Passive health checks and the guarded rolling restart ---------------------------------------

def test_uploads_go_through_while_one_app_server_is_stopped(centralized, shop):
    app1 = centralized.prof.host("app1")
    host_run(app1, "sudo", "systemctl", "stop", "app-web")
    try:
        for i in range(6):
            rid = shop.record()
            data = _pdf(f"app1-down-{i}")
            assert shop.fetch(rid, shop.attach(rid, data)) == data
    finally:
        host_run(app1, "sudo", "systemctl", "start", "app-web")
        checks.wait_for(lambda: _ready(centralized.prof, "app1"), 120, "app1 ready again")


_READY_PROBE = """
import ssl, sys, urllib.request
try:
    ctx = ssl.create_default_context(cafile="/etc/pbox/pki/ca.crt")
    print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=5).status)
except OSError as e:
    print(e)
"""


def _ready(prof, name: str) -> bool:
    """/readyz of an app server as the load balancer sees it (the controller may not reach it)."""
    url = f"https://{prof.host(name).address}:8000/readyz"
    return host_run(prof.host("lb1"), "python3", "-c", _READY_PROBE, url, check=False) == "200"


RESTART_PLAY = """
- name: Rolling restart of the app servers, as playbooks/app.yml does it
  hosts: app
  gather_facts: false
  serial: 1
  tasks:
    - name: Restart
      ansible.builtin.include_role:
        name: app
        tasks_from: restart.yml
"""


def _restart_app1(tmp_path) -> subprocess.CompletedProcess[str]:
    play = tmp_path / "restart.yml"
    play.write_text(RESTART_PLAY)
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(lab.LAB_INVENTORY / "hosts.yml"),
         "--limit", "app1", "-e", "app_restart_needed=true", str(play)],
        capture_output=True, text=True, cwd=REPO, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_ROLES_PATH": str(REPO / "roles")})


def test_rolling_restart_takes_a_host_out_only_while_another_is_ready(centralized, tmp_path):
    prof = centralized.prof
    app1, app2 = prof.host("app1"), prof.host("app2")
    def started() -> str:
        return host_run(app1, "systemctl", "show", "-P", "ActiveEnterTimestampMonotonic", "app-web")

    before = started()
    host_run(app2, "sudo", "systemctl", "stop", "app-web")
    try:
        r = _restart_app1(tmp_path)
        assert r.returncode != 0, r.stdout[-3000:]
        assert "no other app server of the site answers /readyz" in r.stdout, r.stdout[-3000:]
        assert started() == before
    finally:
        host_run(app2, "sudo", "systemctl", "start", "app-web")
        checks.wait_for(lambda: _ready(prof, "app2"), 120, "app2 ready again")
    r = _restart_app1(tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    assert started() != before
    assert _ready(prof, "app1")
