"""The centralized (集中式) profile: the deployment succeeded, then smoke through the load balancer,
replication, TLS policy, every service running."""

import socket
import ssl
import subprocess

import pytest

from pbox.lab import lab
from pbox.paths import REPO
from tests.lab import deploy_checks as checks
from tests.lab.centralized.conftest import BIN, PROFILE
from tests.lab.conftest import host_run


def test_ansible_ping_every_host(centralized):
    prof = centralized.prof
    inv = str(lab.LAB_INVENTORY / "hosts.yml")
    r = subprocess.run([str(BIN / "ansible"), "-i", inv, "all", "-m", "ping"], capture_output=True, text=True,
                       cwd=REPO, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(prof.hosts)


def test_pbox_deploy_runs_site_yml(centralized):
    r = centralized.deploy
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-3000:]
    assert "deploy succeeded" in r.stdout
    assert "deploy summary" in r.stdout


def test_upload_read_attachment_through_the_load_balancer(centralized):
    prof = centralized.prof
    lb = prof.host("lb1")
    rec = checks.smoke(str(lb.address), PROFILE)
    checks.replica_has_record(prof.host("db2"), rec["record_id"])


def test_load_balancer_tls_policy(centralized):
    prof = centralized.prof
    addr = str(prof.host("lb1").address)
    ctx = ssl.create_default_context(cafile=str(checks.ca_file(PROFILE)))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((addr, 443), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="lb1") as t:
        assert t.selected_alpn_protocol() == "h2"
        assert t.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(checks.ca_file(PROFILE)))
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((addr, 443), timeout=10) as s, pytest.raises(ssl.SSLError):
        old.wrap_socket(s, server_hostname="lb1")


def test_replication_is_tls_and_uses_a_slot(centralized):
    prof = centralized.prof
    db1 = prof.host("db1")
    out = host_run(db1, "sudo", "-u", "postgres", "psql", "-Atc",
                   "SELECT s.ssl, r.state FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert out == "t|streaming", out
    assert host_run(db1, "sudo", "-u", "postgres", "psql", "-Atc",
                    "SELECT slot_name, active FROM pg_replication_slots") == "db2|t"


def test_every_service_enabled_and_running(centralized):
    prof = centralized.prof
    checks.services_enabled_and_running(prof)
