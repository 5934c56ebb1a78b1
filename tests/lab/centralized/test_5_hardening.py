"""The GB/T 22239 level-3 host baseline on the centralized deployment (site.yml ends with hardening.yml):
the auditor's report is all-pass, a hand-made drift is reported and then restored, SSH refuses root
and passwords, and each host's firewall lets in only its catalogued peers."""

import json
import subprocess
import time

import pytest

from pbox.lab import lab
from pbox.lab.inventory import ssh_args
from pbox.paths import REPO
from tests.lab.centralized.conftest import BIN
from tests.lab.conftest import host_run


def audit(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / f"audit-{time.monotonic_ns()}"
    r = subprocess.run(
        [str(BIN / "pbox"), "audit", "-o", str(out), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    data = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return r, data


def finding(report: dict, host: str, check: str) -> dict:
    h = next(h for h in report["hosts"] if h["host"] == host)
    return next(f for f in h["findings"] if f["check"] == check)


def test_audit_report_is_all_pass_on_the_fresh_deploy(centralized, tmp_path):
    t0 = time.monotonic()
    r, report = audit(tmp_path)
    centralized.timings["audit"] = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert report["ok"] and report["summary"].get("fail", 0) == 0
    hosts = {h["host"]: h for h in report["hosts"]}
    assert set(hosts) == {h.name for h in centralized.prof.hosts}
    for name, h in hosts.items():
        checks = {f["check"] for f in h["findings"]}
        # Every host was really checked: identity, SSH, sudo, firewall, logs, integrity.
        assert {
            "pam.faillock.stack",
            "ssh.permitrootlogin",
            "sudo.auditadmin",
            "firewall.22/tcp",
            "firewall.no_other_ports",
            "logs.local_retention",
            "aide.baseline",
        } <= checks, name
        # Containers: kernel-level checks are n/a and do not claim a verification that did not happen.
        assert h["container"], name
        na = [f for f in h["findings"] if f["status"] == "na"]
        assert na and all(
            "no host with its own kernel in this inventory verified it" in f["where"] for f in na
        )
    assert finding(report, "lb1", "logs.central_receiver")["status"] == "pass"
    for app in ("app1", "app2"):
        for check in ("app.db_tls", "app.field_key", "app.unit.app-web"):
            assert finding(report, app, check)["status"] == "pass"


def test_drift_by_hand_is_reported_then_restored(centralized, tmp_path):
    app1 = centralized.prof.host("app1")
    dropin = "/etc/ssh/sshd_config.d/00-pbox-hardening.conf"
    host_run(app1, "sudo", "sed", "-i", "s/^PermitRootLogin no$/PermitRootLogin yes/", dropin)
    host_run(app1, "sudo", "chmod", "0644", "/etc/shadow")
    # No reload: the audit reads the configuration sshd would start with (sshd -T), and a reload
    # would refuse connections while sshd re-executes itself (stop 13's CI failed on that race).
    try:
        r, report = audit(tmp_path, "--limit", "app1")
        assert r.returncode == 1, r.stdout[-3000:]
        root = finding(report, "app1", "ssh.permitrootlogin")
        assert (root["status"], root["expected"], root["observed"]) == ("fail", "no", "yes")
        shadow = finding(report, "app1", "perm./etc/shadow")
        assert (shadow["status"], shadow["observed"]) == ("fail", "644 root shadow")
        # The file-integrity baseline saw both changes too.
        aide = finding(report, "app1", "aide.baseline")
        assert aide["status"] == "fail" and dropin in aide["evidence"]
        assert "FAIL app1 8.1.4.1 c root cannot log in over SSH" in r.stdout.replace("\n", " ")
    finally:
        host_run(app1, "sudo", "sed", "-i", "s/^PermitRootLogin yes$/PermitRootLogin no/", dropin)
        host_run(app1, "sudo", "chmod", "0640", "/etc/shadow")
        # The operator's step after an approved change: a new integrity baseline.
        host_run(
            app1,
            "sudo",
            "sh",
            "-c",
            "aide --init --config /etc/aide/aide.conf >/dev/null; "
            "cp /var/lib/aide/aide.db.new /var/lib/aide/aide.db",
        )
    r, report = audit(tmp_path, "--limit", "app1")
    assert r.returncode == 0, r.stdout[-3000:]


def _ssh(host, user: str, *opts: str) -> subprocess.CompletedProcess[str]:
    argv = lab.ssh_argv(host, "true")
    at = argv.index(f"pbox@{host.address}")
    argv[at] = f"{user}@{host.address}"
    return subprocess.run(
        [*argv[:at], *opts, *argv[at:]], capture_output=True, text=True, timeout=60, check=False
    )


def test_ssh_refuses_root_and_passwords(centralized):
    app1 = centralized.prof.host("app1")
    assert _ssh(app1, "pbox").returncode == 0  # the administrator's key works
    # Root with a valid key is still refused (PermitRootLogin no).
    host_run(app1, "sudo", "install", "-d", "-m", "0700", "/root/.ssh")
    host_run(app1, "sudo", "cp", "/home/pbox/.ssh/authorized_keys", "/root/.ssh/authorized_keys")
    try:
        r = _ssh(app1, "root")
        assert r.returncode == 255 and "Permission denied" in r.stderr, r.stderr
    finally:
        host_run(app1, "sudo", "rm", "-f", "/root/.ssh/authorized_keys")
    # A password is never asked for: the server offers public keys only.
    r = subprocess.run(
        ["sshpass", "-p", "any-password", *_ssh_password_argv(app1)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0
    assert "Permission denied (publickey)" in r.stderr, r.stderr


def _ssh_password_argv(host) -> list[str]:
    return [
        "ssh",
        *ssh_args(lab.known_hosts()).split(),
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-o",
        "NumberOfPasswordPrompts=1",
        f"pbox@{host.address}",
        "true",
    ]


def _reachable(src, dst, port: int) -> bool:
    r = subprocess.run(
        lab.ssh_argv(src, f"timeout 4 bash -c 'echo > /dev/tcp/{dst.address}/{port}'"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return r.returncode == 0


@pytest.mark.parametrize(
    ("src", "dst", "port", "allowed"),
    [
        ("app1", "db1", 5432, True),  # app → PostgreSQL
        ("db2", "db1", 5432, True),  # replica → primary
        ("lb1", "db1", 8432, True),  # the offsite backup host (lb1 here) → pgBackRest's server
        ("app2", "db1", 8432, False),  # … and no one else
        ("lb1", "app1", 8000, True),  # load balancer → app
        ("app2", "app1", 8000, False),  # app port only from the load balancer
        ("app1", "db1", 9000, True),  # app → MinIO
        ("app1", "db1", 9001, False),  # the MinIO console only from the admin network
        ("app1", "db2", 22, False),  # SSH only from the admin network (the controller)
    ],
)
def test_firewall_lets_in_only_listed_peers(centralized, src, dst, port, allowed):
    prof = centralized.prof
    target = prof.host(dst)
    # The port is served: unreachability is the firewall's doing, not a missing listener.
    assert f":{port} " in host_run(target, "ss", "-Hltn", f"sport = :{port}") + " "
    assert _reachable(prof.host(src), target, port) is allowed
