"""`pbox audit` report generation: parsers, the firewall catalog, verdicts, container n/a, rendering.

Hosts are replayed from recorded command outputs (the lab tests run the same checks on real hosts)."""

import importlib.util
import json

import yaml

from pbox.audit_report import checks, parse, render
from pbox.audit_report.app_checks import redact
from pbox.audit_report.model import CONTAINER_NA, Report
from pbox.audit_report.probe import Output
from pbox.audit_report.runner import check_host
from pbox.paths import REPO

ROLE = REPO / "roles" / "hardening"

NFT = """table inet pbox_filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		ip saddr 10.213.3.1 tcp dport 22 accept comment "ssh"
		ip saddr { 10.213.3.11, 10.213.3.12 } tcp dport 5432 accept comment "postgresql"
		tcp dport 443 accept comment "https"
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}"""


def _firewall_module():
    spec = importlib.util.spec_from_file_location(
        "hardening_firewall", ROLE / "filter_plugins" / "firewall.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_nft_input_reads_policy_ports_and_sources():
    policy, accepted = parse.nft_input(NFT)
    assert policy == "drop"
    assert accepted == {
        (22, "tcp"): {"10.213.3.1"},
        (5432, "tcp"): {"10.213.3.11", "10.213.3.12"},
        (443, "tcp"): {"any"},
    }
    assert parse.normalize_source("10.213.3.1/32") == "10.213.3.1"


def test_sources_compare_as_the_addresses_they_cover():
    listed = {"10.213.2.1", "10.213.2.10", "10.213.2.11", "10.213.2.12", "10.213.2.21", "10.213.2.22"}
    merged_by_nft = {"10.213.2.1", "10.213.2.10-10.213.2.12", "10.213.2.21-10.213.2.22"}
    assert parse.canonical_sources(listed) == parse.canonical_sources(merged_by_nft)
    assert parse.canonical_sources(listed) != parse.canonical_sources(merged_by_nft - {"10.213.2.1"})
    assert parse.canonical_sources({"any"}) == {"any"}
    assert parse.canonical_sources({"192.0.2.0/24", "192.0.2.7/32"}) == {"192.0.2.0/24"}


def test_key_values_and_logrotate_and_pam_args():
    assert parse.key_values("PASS_MAX_DAYS\t90\n# x\nminlen = 12", None)["pass_max_days"] == "90"
    assert parse.key_values("minlen = 12\nminlen = 8", "=") == {"minlen": "12"}  # first wins, like sshd
    assert parse.logrotate_days("/var/log/syslog\n{\n\trotate 26\n\tweekly\n}") == 182
    assert parse.logrotate_days("{\n rotate 4\n weekly\n}") == 28
    args = parse.pam_module_args(
        "password requisite pam_pwhistory.so remember=5 use_authtok", "pam_pwhistory.so"
    )
    assert args == {"remember": "5", "use_authtok": ""}


def test_firewall_catalog_resolves_groups_within_the_site():
    fw = _firewall_module()
    catalog = {
        "all": [{"name": "ssh", "port": 22, "proto": "tcp", "from": ["admin"]}],
        "postgresql": [{"name": "postgresql", "port": 5432, "proto": "tcp", "from": ["app", "backup"]}],
        "loadbalancer": [{"name": "https", "port": 443, "proto": "tcp", "from": ["any"]}],
        "monitoring": [{"name": "syslog", "port": 6514, "proto": "tcp", "from": ["all"], "any_site": True}],
    }
    groups = {
        "all": ["db1", "app1", "app9", "lb1"],
        "app": ["app1", "app9"],
        "postgresql": ["db1"],
        "loadbalancer": ["lb1"],
        "monitoring": ["lb1"],
    }
    hostvars = {
        "db1": {"ansible_host": "10.0.0.21"},
        "app1": {"ansible_host": "10.0.0.11"},
        "app9": {"ansible_host": "10.9.0.11"},
        "lb1": {"ansible_host": "10.0.0.10"},
    }
    site = ["db1", "app1", "lb1"]  # app9 is another site's
    rules = fw.firewall_rules(catalog, ["postgresql"], groups, hostvars, ["192.0.2.0/24"], site)
    assert rules == [
        {"name": "ssh", "port": 22, "proto": "tcp", "from": ["192.0.2.0/24"]},
        {"name": "postgresql", "port": 5432, "proto": "tcp", "from": ["10.0.0.11"]},
    ]
    lb = fw.firewall_rules(catalog, ["loadbalancer", "monitoring"], groups, hostvars, ["192.0.2.1/32"], site)
    assert [r["from"] for r in lb if r["port"] == 443] == [["any"]]
    assert [r["from"] for r in lb if r["port"] == 6514] == [
        ["10.0.0.10", "10.0.0.11", "10.0.0.21", "10.9.0.11"]
    ]


def test_role_catalog_has_the_required_ports():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    cat = defaults["hardening_firewall_catalog"]
    ports = {(g, e["port"]): set(e["from"]) for g, entries in cat.items() for e in entries}
    assert ports[("all", 22)] == {"admin"}
    assert ports[("postgresql", 5432)] >= {"app", "postgresql"}
    assert ports[("object_storage", 9000)] >= {"object_storage", "app", "backup"}
    assert ports[("app", 8000)] == {"loadbalancer", "monitoring"}  # proxied requests; /metrics scrapes
    assert ports[("loadbalancer", 443)] == ports[("loadbalancer", 80)] == {"any"}


class Replay:
    """A host that answers recorded commands (by prefix); anything else fails like a missing file."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def run(self, command: str) -> Output:
        for prefix, out in self.answers.items():
            if command.startswith(prefix):
                return Output(0, out, "")
        return Output(1, "", "not recorded")


def _expected() -> dict:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    exp = {k: v for k, v in defaults.items() if not (isinstance(v, str) and "{{" in v)}
    exp.update(
        hardening_ssh_allow_groups=["pbox-sysadm", "pbox-secadm", "pbox-audadm"],
        hardening_ansible_user="pbox",
        hardening_log_host="",
        hardening_shadow_group="shadow",
        hardening_shadow_mode="0640",
        hardening_admin_networks=["10.213.3.1/32"],
        hardening_firewall_rules=[{"name": "ssh", "port": 22, "proto": "tcp", "from": ["10.213.3.1/32"]}],
        hardening_file_permissions=[
            {"path": "/etc/shadow", "owner": "root", "group": "shadow", "mode": "0640"}
        ],
    )
    return exp


def _host(virt: str, permit_root: str = "no") -> Replay:
    exp = _expected()
    sshd = "\n".join(
        [
            f"permitrootlogin {permit_root}",
            "passwordauthentication no",
            "kbdinteractiveauthentication no",
            "permitemptypasswords no",
            "x11forwarding no",
            "maxauthtries 3",
            "clientaliveinterval 300",
            "clientalivecountmax 3",
            "loglevel VERBOSE",
            "ciphers " + ",".join(exp["hardening_ssh_ciphers"]),
            "macs " + ",".join(exp["hardening_ssh_macs"]),
            "kexalgorithms " + ",".join(exp["hardening_ssh_kex_algorithms"]),
            "allowgroups pbox-sysadm",
            "allowgroups pbox-secadm",
            "allowgroups pbox-audadm",
            "banner /etc/issue.net",
        ]
    )
    kernel = "\n".join(f"{k} = {v}" for k, v in exp["hardening_sysctl_kernel"].items())
    net = "\n".join(f"{k} = {v}" for k, v in exp["hardening_sysctl_net"].items())
    return Replay(
        {
            "systemd-detect-virt": virt,
            "sshd -T": sshd,
            "sysctl net.": net,
            "sysctl kernel.": kernel,
            "systemctl is-active auditd": "active",
            "auditctl -s": "enabled 2\nfailure 1",
            "nft list chain": NFT.replace("\t\tip saddr {", "#").replace("\t\ttcp dport 443", "#"),
            "stat -c '%a %U %G' /etc/shadow": "640 root shadow",
        }
    )


def test_container_checks_are_na_and_say_where_they_were_verified():
    exp = _expected()
    kvm = check_host("k1", "10.213.3.104", ["labcheck"], exp, _host("qemu"))
    ctr = check_host("c1", "10.213.3.101", ["labcheck"], exp, _host("systemd-nspawn"))
    from pbox.audit_report.model import resolve_container_checks

    resolve_container_checks([kvm, ctr])
    k = {f.check: f for f in kvm.findings}
    c = {f.check: f for f in ctr.findings}
    assert k["sysctl.kernel.kptr_restrict"].status == "pass"
    assert k["auditd.immutable"].status == "pass"
    assert c["sysctl.kernel.kptr_restrict"].status == "na"
    assert c["sysctl.kernel.kptr_restrict"].where == f"{CONTAINER_NA}, verified on k1"
    # auditd.rules found nothing on the replayed k1 (no `auditctl -l` recorded): it failed there,
    # so the container must not claim it was verified anywhere.
    assert k["auditd.rules"].status == "fail"
    assert "no host with its own kernel in this inventory verified it" in c["auditd.rules"].where
    # net.* parameters are the container's own: checked, not n/a.
    assert c["sysctl.net.ipv4.ip_forward"].status == "pass"
    assert k["firewall.22/tcp"].status == "pass" and k["firewall.no_other_ports"].status == "pass"
    assert k["perm./etc/shadow"].status == "pass"


def test_drift_fails_with_expected_and_observed():
    bad = check_host("h", "10.0.0.1", [], _expected(), _host("kvm", permit_root="yes"))
    f = next(f for f in bad.findings if f.check == "ssh.permitrootlogin")
    assert (f.status, f.expected, f.observed, f.clause) == ("fail", "no", "yes", checks.C)
    assert "sshd -T" in f.evidence and "permitrootlogin yes" in f.evidence


def test_report_json_html_and_verdict(tmp_path):
    good = check_host("k1", "10.213.3.104", ["app"], _expected(), _host("kvm"))
    bad = check_host("c1", "10.213.3.101", ["app"], _expected(), _host("systemd-nspawn", permit_root="yes"))
    report = Report("inv/hosts.yml", "2026-01-01 00:00:00 UTC", [good, bad], 1.0)
    assert not report.ok
    assert ("c1", next(f for f in bad.findings if f.check == "ssh.permitrootlogin")) in report.failures()
    js, page = render.write(report, tmp_path)
    data = json.loads(js.read_text())
    assert data["ok"] is False and data["summary"]["fail"] >= 1
    c1 = next(h for h in data["hosts"] if h["host"] == "c1")
    row = next(f for f in c1["findings"] if f["check"] == "ssh.permitrootlogin")
    assert row["clause"] == "8.1.4.1 c" and row["observed"] == "yes" and row["status"] == "fail"
    html = page.read_text()
    assert "不符合 — checks failed" in html and 'id="host-c1"' in html and "8.1.4.1" in html
    assert "root cannot log in over SSH" in html


def test_a_host_that_cannot_be_checked_fails_the_report():
    from pbox.audit_report.model import HostReport

    report = Report("inv", "now", [HostReport("x", "10.0.0.9", [], "unknown", False, error="unreachable")])
    assert not report.ok and report.counts()["fail"] == 1
    assert "unreachable" in render.html(report)


def test_secrets_are_redacted_from_evidence():
    line = "PBOX_DATABASE_URL='postgresql+psycopg://pbox_app:s3cret@db1:5432/pbox?sslmode=verify-full'"
    assert "s3cret" not in redact(line) and "sslmode=verify-full" in redact(line)
    assert redact("PBOX_FIELD_KEY=abcdef") == "PBOX_FIELD_KEY=<redacted>"
    assert redact("PBOX_AUDIT_KEY='00ff'") == "PBOX_AUDIT_KEY=<redacted>"
