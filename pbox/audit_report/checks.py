"""The checks: each reads a host (read-only) and records expected vs observed, per clause.

Expected values come from the hardening role's defaults merged with the inventory (`expected.py`),
so the report and the deploy share one source of truth. Checks that need a kernel of the host's
own (auditd, kernel.*/fs.* sysctls, module loading) are n/a on containers.
"""

import re
import shlex
from collections.abc import Callable

from pbox.audit_report import parse
from pbox.audit_report.model import Finding
from pbox.audit_report.probe import Ctx

A = "8.1.4.1 a"  # identification: unique ids, password complexity, periodic change
B = "8.1.4.1 b"  # login failures, session end, idle time-out
C = "8.1.4.1 c"  # remote administration protected against eavesdropping
AC_D = "8.1.4.2 d"  # least privilege, separated administrators
AC_F = "8.1.4.2 f"  # access granularity (files)
AU_A = "8.1.4.3 a"  # audit enabled, covering users and important actions
AU_C = "8.1.4.3 c"  # audit records protected, retained
AU_D = "8.1.4.3 d"  # audit process protected
IP_A = "8.1.4.4 a"  # minimal installation
IP_B = "8.1.4.4 b"  # unneeded services and high-risk ports closed
IP_C = "8.1.4.4 c"  # management access limited by address
TV = "8.1.4.6"  # trusted verification (file integrity)
BOUNDARY = "8.1.3.2"  # access control at boundaries (host firewall)
CENTRE = "8.1.5"  # security management centre: central audit collection
CONF = "8.1.4.8"  # confidentiality of important data (in transit, keys)

SSHD_KEYS: list[tuple[str, str, str, str]] = [
    # sshd -T key, role variable, clause, requirement
    ("permitrootlogin", "ssh_permit_root_login", C, "root cannot log in over SSH"),
    ("passwordauthentication", "ssh_password_authentication", C, "SSH keys only (no passwords)"),
    (
        "kbdinteractiveauthentication",
        "ssh_kbd_interactive_authentication",
        C,
        "SSH keys only (no keyboard-interactive)",
    ),
    ("permitemptypasswords", "ssh_permit_empty_passwords", A, "no empty passwords over SSH"),
    ("x11forwarding", "ssh_x11_forwarding", IP_B, "no X11 forwarding"),
    ("maxauthtries", "ssh_max_auth_tries", B, "SSH authentication attempts per connection"),
    ("clientaliveinterval", "ssh_client_alive_interval", B, "SSH drops unresponsive sessions (interval)"),
    ("clientalivecountmax", "ssh_client_alive_count_max", B, "SSH drops unresponsive sessions (count)"),
    ("loglevel", "ssh_log_level", AU_A, "SSH logs key fingerprints of logins"),
]
SSHD_LISTS: list[tuple[str, str, str]] = [
    ("ciphers", "ssh_ciphers", "SSH ciphers: modern only"),
    ("macs", "ssh_macs", "SSH MACs: encrypt-then-MAC SHA-2 only"),
    ("kexalgorithms", "ssh_kex_algorithms", "SSH key exchange: modern only"),
]


def _same(a: object, b: object) -> bool:
    return str(a).strip().lower() == str(b).strip().lower()


def identification(c: Ctx) -> None:
    cmd = "cat /etc/security/pwquality.conf"
    kv = parse.key_values(c.read("/etc/security/pwquality.conf") or "", "=")
    for key, var, req in (
        ("minlen", "password_min_length", "password minimum length"),
        ("minclass", "password_min_classes", "password character classes"),
    ):
        c.add(
            f"pam.pwquality.{key}", A, req, c.e(var), kv.get(key, "unset"), _same(kv.get(key), c.e(var)), cmd
        )
    pam_pw = c.read("/etc/pam.d/common-password") or c.read("/etc/pam.d/system-auth") or ""
    args = parse.pam_module_args(pam_pw, "pam_pwhistory.so")
    remember = (args or {}).get("remember", "absent")
    c.add(
        "pam.pwhistory",
        A,
        "password history (reuse refused)",
        f"remember={c.e('password_remember')}",
        f"remember={remember}" if args is not None else "pam_pwhistory not in the stack",
        _same(remember, c.e("password_remember")),
        "grep pam_pwhistory /etc/pam.d/common-password",
        "\n".join(ln for ln in pam_pw.splitlines() if "pam_pwhistory" in ln or "pam_pwquality" in ln),
    )
    pam_pwq = parse.pam_module_args(pam_pw, "pam_pwquality.so")
    c.add(
        "pam.pwquality.stack",
        A,
        "password quality enforced by PAM",
        "pam_pwquality in the password stack",
        "present" if pam_pwq is not None else "absent",
        pam_pwq is not None,
        "grep pam_pwquality /etc/pam.d/common-password",
        "\n".join(ln for ln in pam_pw.splitlines() if "pam_pwquality" in ln),
    )
    defs = parse.key_values(c.read("/etc/login.defs") or "")
    c.add(
        "login.pass_max_days",
        A,
        "periodic password change (days)",
        c.e("password_max_days"),
        defs.get("pass_max_days", "unset"),
        _same(defs.get("pass_max_days"), c.e("password_max_days")),
        "grep PASS_MAX_DAYS /etc/login.defs",
        f"PASS_MAX_DAYS {defs.get('pass_max_days', '')}",
    )
    out = c.run("awk -F: '$2 == \"\" {print $1}' /etc/shadow")
    empty = out.stdout.split()
    c.add(
        "accounts.no_empty_password",
        A,
        "no account with an empty password",
        "none",
        ", ".join(empty) or "none",
        out.rc == 0 and not empty,
        "awk -F: '$2 == \"\" {print $1}' /etc/shadow",
    )
    auth = c.read("/etc/pam.d/common-auth") or ""
    nullok = [ln for ln in auth.splitlines() if "nullok" in ln and not ln.lstrip().startswith("#")]
    if c.e("lock_empty_passwords"):
        c.add(
            "pam.no_nullok",
            A,
            "PAM refuses empty passwords (no nullok)",
            "no nullok",
            "nullok present" if nullok else "no nullok",
            not nullok,
            "grep nullok /etc/pam.d/common-auth",
            "\n".join(nullok),
        )
    banner = (c.read("/etc/issue.net") or "").strip()
    c.add(
        "banner",
        A,
        "login banner before authentication",
        "the configured banner",
        "matches" if banner == str(c.e("banner")).strip() else (banner[:80] or "absent"),
        banner == str(c.e("banner")).strip(),
        "cat /etc/issue.net",
    )


def login_failures(c: Ctx) -> None:
    kv = parse.key_values(c.read("/etc/security/faillock.conf") or "", "=")
    for key, var in (("deny", "faillock_deny"), ("unlock_time", "faillock_unlock_time")):
        c.add(
            f"pam.faillock.{key}",
            B,
            f"lockout after failed logins ({key})",
            c.e(var),
            kv.get(key, "unset"),
            _same(kv.get(key), c.e(var)),
            "cat /etc/security/faillock.conf",
        )
    auth = c.read("/etc/pam.d/common-auth") or c.read("/etc/pam.d/system-auth") or ""
    lines = [
        ln.strip() for ln in auth.splitlines() if "pam_faillock.so" in ln and not ln.lstrip().startswith("#")
    ]
    ok = any("preauth" in ln for ln in lines) and any("authfail" in ln for ln in lines)
    c.add(
        "pam.faillock.stack",
        B,
        "pam_faillock counts failures (preauth + authfail)",
        "preauth and authfail",
        "; ".join(lines) or "absent",
        ok,
        "grep pam_faillock /etc/pam.d/common-auth",
        "\n".join(lines),
    )
    cmd = 'bash -lc \'echo "$TMOUT"; readonly -p | grep -c " TMOUT="\''
    out = c.run(cmd)
    words = out.stdout.split()
    value, readonly = ([*words, "", ""])[:2]
    c.add(
        "shell.tmout",
        B,
        "idle shells time out (TMOUT, readonly)",
        f"{c.e('shell_timeout')} readonly",
        f"{value or 'unset'}{' readonly' if readonly == '1' else ''}",
        _same(value, c.e("shell_timeout")) and readonly == "1",
        cmd,
    )


def ssh(c: Ctx) -> None:
    cmd = "sshd -T -C user=nobody,host=localhost,addr=127.0.0.1 2>/dev/null || sshd -T"
    out = c.run(cmd)
    conf = parse.key_values(out.stdout)
    if out.rc != 0 or not conf:
        c.add(
            "ssh.effective",
            C,
            "SSH daemon configuration readable",
            "sshd -T succeeds",
            f"rc={out.rc}",
            False,
            cmd,
            out.stderr,
        )
        return
    for key, var, clause, req in SSHD_KEYS:
        c.add(
            f"ssh.{key}",
            clause,
            req,
            c.e(var),
            conf.get(key, "unset"),
            _same(conf.get(key), c.e(var)),
            cmd,
            f"{key} {conf.get(key, '')}",
        )
    for key, var, req in SSHD_LISTS:
        observed = conf.get(key, "")
        allowed = set(c.e(var))
        extra = sorted(set(observed.split(",")) - allowed)
        c.add(
            f"ssh.{key}",
            C,
            req,
            ",".join(c.e(var)),
            observed,
            bool(observed) and not extra,
            cmd,
            f"{key} {observed}" + (f"\nnot allowed: {','.join(extra)}" if extra else ""),
        )
    # sshd -T prints one allowgroups line per group.
    groups = " ".join(
        ln.split(None, 1)[1]
        for ln in out.stdout.splitlines()
        if ln.startswith("allowgroups ") and len(ln.split()) > 1
    )
    want = " ".join(c.e("ssh_allow_groups"))
    c.add(
        "ssh.allowgroups",
        IP_C,
        "SSH only for the administrator groups",
        want,
        groups or "anyone",
        set(groups.split()) == set(want.split()),
        cmd,
        f"allowgroups {groups}",
    )
    c.add(
        "ssh.banner",
        A,
        "SSH shows the login banner",
        "/etc/issue.net",
        conf.get("banner", "none"),
        conf.get("banner") == "/etc/issue.net",
        cmd,
        f"banner {conf.get('banner', '')}",
    )


def administrators(c: Ctx) -> None:
    names = [c.e("group_sysadmin"), c.e("group_secadmin"), c.e("group_auditadmin")]
    cmd = "getent group " + " ".join(names)
    out = c.run(cmd)
    present = {ln.split(":")[0]: ln.split(":")[3] for ln in out.stdout.splitlines() if ln.count(":") >= 3}
    c.add(
        "admins.groups",
        AC_D,
        "separate system, security and audit administrator groups",
        ", ".join(names),
        ", ".join(n for n in names if n in present) or "none",
        all(n in present for n in names),
        cmd,
    )
    user = c.e("ansible_user")
    members = present.get(c.e("group_sysadmin"), "").split(",")
    c.add(
        "admins.ansible_user",
        AC_D,
        "the deploy account is a named system administrator",
        f"{user} in {c.e('group_sysadmin')}",
        ",".join(m for m in members if m) or "nobody",
        user in members,
        cmd,
    )
    sudoers = c.read("/etc/sudoers.d/pbox-admins") or ""
    rules = [ln.strip() for ln in sudoers.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    sys_ok = any(r.startswith(f"%{c.e('group_sysadmin')} ") for r in rules)
    sec_rule = next((r for r in rules if r.startswith(f"%{c.e('group_secadmin')} ")), "")
    sec_ok = bool(sec_rule) and " ALL" not in sec_rule.split(")", 1)[-1].replace("NOPASSWD:", "")
    c.add(
        "sudo.sysadmin",
        AC_D,
        "system administrators have sudo",
        f"%{c.e('group_sysadmin')} rule",
        "present" if sys_ok else "absent",
        sys_ok,
        "cat /etc/sudoers.d/pbox-admins",
        "\n".join(rules),
    )
    c.add(
        "sudo.secadmin",
        AC_D,
        "security administrators run only the security commands",
        ", ".join(c.e("secadmin_commands")),
        sec_rule.split(")", 1)[-1].strip() or "absent",
        sec_ok,
        "cat /etc/sudoers.d/pbox-admins",
        sec_rule,
    )
    cmd = f"grep -rhs '%{c.e('group_auditadmin')}' /etc/sudoers /etc/sudoers.d/ || true"
    out = c.run(cmd)
    c.add(
        "sudo.auditadmin",
        AC_D,
        "audit administrators have no sudo",
        "no rule",
        out.stdout.strip() or "no rule",
        not out.stdout.strip(),
        cmd,
    )
    cmd = "visudo -c"
    out = c.run(cmd)
    c.add(
        "sudo.valid",
        AC_D,
        "sudo configuration valid",
        "parsed OK",
        "OK" if out.rc == 0 else f"rc={out.rc}",
        out.rc == 0,
        cmd,
        out.stdout + out.stderr,
    )


def file_permissions(c: Ctx) -> None:
    for item in c.e("file_permissions"):
        path = item["path"]
        cmd = f"stat -c '%a %U %G' {shlex.quote(path)}"
        out = c.run(cmd)
        if out.rc != 0:
            continue  # only files that exist are governed
        mode, owner, group = ([*out.stdout.split(), "", "", ""])[:3]
        want = f"{int(str(item['mode']), 8):o} {item['owner']} {item['group']}"
        c.add(
            f"perm.{path}",
            AC_F,
            f"owner and mode of {path}",
            want,
            f"{mode} {owner} {group}",
            f"{mode} {owner} {group}" == want,
            cmd,
        )


def minimal(c: Ctx) -> None:
    pkgs = list(c.e("removed_packages"))
    cmd = "dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(pkgs) + " 2>/dev/null || true"
    out = c.run(cmd)
    installed = [ln.split()[0] for ln in out.stdout.splitlines() if ln.endswith("install ok installed")]
    c.add(
        "packages.removed",
        IP_A,
        "no clear-text remote services installed",
        "none of " + ", ".join(pkgs),
        ", ".join(installed) or "none",
        not installed,
        cmd,
    )
    svcs = list(c.e("disabled_services"))
    cmd = "systemctl is-active " + " ".join(f"{s}.service" for s in svcs) + " || true"
    out = c.run(cmd)
    active = [s for s, state in zip(svcs, out.stdout.split(), strict=False) if state == "active"]
    c.add(
        "services.disabled",
        IP_B,
        "unneeded services not running",
        "none active",
        ", ".join(active) or "none",
        not active,
        cmd,
    )
    conf = c.read("/etc/modprobe.d/pbox-hardening.conf") or ""
    missing = [m for m in c.e("disabled_modules") if f"install {m} /bin/false" not in conf]
    c.add(
        "modules.config",
        IP_B,
        "unused kernel modules disabled (configuration)",
        ", ".join(c.e("disabled_modules")),
        "all disabled" if not missing else "missing: " + ", ".join(missing),
        not missing,
        "cat /etc/modprobe.d/pbox-hardening.conf",
    )
    if c.container:
        c.not_in_container(
            "modules.loadable", IP_B, "unused kernel modules cannot load", "install /bin/false"
        )
    else:
        bad = []
        evidence = []
        for m in c.e("disabled_modules"):
            out = c.run(f"modprobe -n -v {m} 2>&1 || true")
            evidence.append(f"{m}: {out.stdout.strip()}")
            if "/bin/false" not in out.stdout:
                bad.append(m)
        c.add(
            "modules.loadable",
            IP_B,
            "unused kernel modules cannot load",
            "install /bin/false for each",
            "none loadable" if not bad else "loadable: " + ", ".join(bad),
            not bad,
            "modprobe -n -v <module>",
            "\n".join(evidence),
        )
        lsmod = c.run("cat /proc/modules")
        loaded = [
            m for m in c.e("disabled_modules") if re.search(rf"^{m.replace('-', '_')}\s", lsmod.stdout, re.M)
        ]
        c.add(
            "modules.not_loaded",
            IP_B,
            "unused kernel modules not loaded",
            "none loaded",
            ", ".join(loaded) or "none",
            not loaded,
            "cat /proc/modules",
            "",
        )


def sysctls(c: Ctx) -> None:
    def check(settings: dict[str, object], kernel: bool) -> None:
        if kernel and c.container:
            for key, value in settings.items():
                c.not_in_container(f"sysctl.{key}", IP_A, f"kernel parameter {key}", value)
            return
        cmd = "sysctl " + " ".join(settings)
        out = c.run(cmd + " 2>&1 || true")
        got = parse.key_values(out.stdout, "=")
        for key, value in settings.items():
            c.add(
                f"sysctl.{key}",
                IP_A if kernel else IP_B,
                f"{'kernel' if kernel else 'network'} parameter {key}",
                value,
                got.get(key.lower(), "unset"),
                _same(got.get(key.lower()), value),
                cmd + " 2>&1 || true",
                f"{key} = {got.get(key.lower(), '')}",
            )

    check(c.e("sysctl_net"), kernel=False)
    check(c.e("sysctl_kernel"), kernel=True)


def audit(c: Ctx) -> None:
    if not c.e("auditd_enabled"):
        return
    if c.container:
        for check, clause, req in (
            ("auditd.running", AU_A, "auditd running"),
            ("auditd.rules", AU_A, "audit rules loaded"),
            ("auditd.immutable", AU_D, "audit rules immutable until reboot"),
            ("auditd.keep_logs", AU_C, "audit logs never overwritten"),
            ("auditd.log_access", AU_C, "audit logs readable by audit administrators only"),
        ):
            c.not_in_container(check, clause, req, "as configured")
        return
    c.unit("auditd.running", AU_A, "auditd running", "auditd")
    out = c.run("auditctl -l")
    loaded = out.stdout
    want_keys = sorted(
        set(c.e("audit_watches")) | set(c.e("audit_syscalls")) | {"privilege", "privilege_use"}
    )
    missing = [k for k in want_keys if f"key={k}" not in loaded and f"-k {k}" not in loaded]
    watches = [p for paths in c.e("audit_watches").values() for p in paths]
    missing_watch = [p for p in watches if f"-w {p} " not in loaded]
    c.add(
        "auditd.rules",
        AU_A,
        "audit rules: identity, privilege, time, logins, configuration",
        f"{len(want_keys)} keys, {len(watches)} watches",
        "all loaded" if not (missing or missing_watch) else f"missing keys {missing} watches {missing_watch}",
        not (missing or missing_watch),
        "auditctl -l",
    )
    out = c.run("auditctl -s")
    enabled = parse.key_values(out.stdout).get("enabled", "?")
    want = "2" if c.e("audit_immutable") else "1"
    c.add(
        "auditd.immutable",
        AU_D,
        "audit rules immutable until reboot",
        f"enabled {want}",
        f"enabled {enabled}",
        enabled == want,
        "auditctl -s",
    )
    conf = parse.key_values(c.read("/etc/audit/auditd.conf") or "", "=")
    c.add(
        "auditd.keep_logs",
        AU_C,
        "audit logs never overwritten",
        c.e("auditd_max_log_file_action"),
        conf.get("max_log_file_action", "unset"),
        _same(conf.get("max_log_file_action"), c.e("auditd_max_log_file_action")),
        "cat /etc/audit/auditd.conf",
        f"max_log_file_action = {conf.get('max_log_file_action', '')}",
    )
    d = c.e("audit_log_dir")
    cmd = f"stat -c '%n %a %U %G' {d} {d}/*"
    out = c.run(cmd)
    rows = [ln.split() for ln in out.stdout.splitlines() if len(ln.split()) == 4]
    group = c.e("group_auditadmin")
    bad = [r[0] for r in rows if r[3] != group or r[2] != "root" or int(r[1], 8) & 0o027]
    c.add(
        "auditd.log_access",
        AU_C,
        "audit logs readable by audit administrators only",
        f"root:{group}, no group write, no access for others",
        "as expected" if rows and not bad else f"wrong: {', '.join(bad) or 'no logs'}",
        bool(rows) and not bad,
        cmd,
    )


def logs(c: Ctx) -> None:
    days = c.e("log_retention_days")
    text = c.read("/etc/logrotate.d/rsyslog") or ""
    kept = parse.logrotate_days(text)
    c.add(
        "logs.local_retention",
        AU_C,
        "local logs kept at least the retention period",
        f">= {days} days",
        f"{kept} days",
        kept >= int(days),
        "cat /etc/logrotate.d/rsyslog",
        "\n".join(ln for ln in text.splitlines() if "rotate" in ln or "weekly" in ln or "daily" in ln),
    )
    j = c.run("cat /etc/systemd/journald.conf.d/pbox-hardening.conf")
    c.add(
        "logs.journald_to_syslog",
        AU_C,
        "journal records handed to rsyslog",
        "ForwardToSyslog=yes",
        "yes" if "ForwardToSyslog=yes" in j.stdout else "no",
        "ForwardToSyslog=yes" in j.stdout,
        "cat /etc/systemd/journald.conf.d/pbox-hardening.conf",
    )
    c.unit("logs.rsyslog", AU_A, "rsyslog running", "rsyslog")
    log_host = str(c.e("log_host"))
    if not log_host:
        c.findings.append(
            Finding(
                "logs.central",
                CENTRE,
                "logs forwarded to a central log host",
                f"the first host of group {c.e('log_host_group')} in the site",
                "no such host in this inventory",
                "na",
                "(inventory)",
                "not applicable: this inventory has no log host",
            )
        )
        return
    if log_host == c.host:
        cmd = f"ss -Hltn 'sport = :{c.e('log_port')}'; ls -1 {c.e('log_remote_dir')}"
        out = c.run(cmd)
        listening = f":{c.e('log_port')}" in out.stdout
        senders = {
            ln.strip().split(".")[0].lower()
            for ln in out.stdout.splitlines()
            if ln.strip() and ":" not in ln and "LISTEN" not in ln
        }
        want = sorted(str(h).split(".")[0].lower() for h in c.e("log_senders"))
        silent = [h for h in want if h not in senders]
        c.add(
            "logs.central_receiver",
            CENTRE,
            "central log host receives every host's logs",
            f"listening on {c.e('log_port')}/tcp (TLS: {c.e('log_tls')}); "
            f"logs from {', '.join(want) or 'no host'}",
            ("listening; " + (f"nothing from {', '.join(silent)}" if silent else "logs from every host"))
            if listening
            else "not listening",
            listening and not silent,
            cmd,
        )
        tmp = c.read("/etc/tmpfiles.d/pbox-remote-logs.conf") or ""
        m = re.search(r"\s(\d+)d\s*$", tmp, re.M)
        c.add(
            "logs.central_retention",
            AU_C,
            "central logs kept at least the retention period",
            f">= {days} days",
            f"{m.group(1)} days" if m else "unset",
            bool(m) and int(m.group(1)) >= int(days),
            "cat /etc/tmpfiles.d/pbox-remote-logs.conf",
        )
    else:
        fwd = c.read("/etc/rsyslog.d/20-pbox-forward.conf") or ""
        m = re.search(r'target="([^"]+)"', fwd)
        tls = 'StreamDriver="gtls"' in fwd
        want = f"{log_host}:{c.e('log_port')}" + (" over TLS" if c.e("log_tls") else "")
        got = (f"{m.group(1)}:{c.e('log_port')}" + (" over TLS" if tls else "")) if m else "no forwarding"
        c.add(
            "logs.forwarding",
            CENTRE,
            "logs forwarded to the central log host",
            want,
            got,
            got == want,
            "cat /etc/rsyslog.d/20-pbox-forward.conf",
        )


def firewall(c: Ctx) -> None:
    if not c.e("firewall_enabled"):
        return
    c.unit("firewall.active", BOUNDARY, "host firewall active", "nftables")
    out = c.run("nft list chain inet pbox_filter input")
    policy, accepted = parse.nft_input(out.stdout)
    c.add(
        "firewall.policy",
        IP_B,
        "everything not listed is dropped",
        "drop",
        policy or "no input chain",
        policy == "drop",
        "nft list chain inet pbox_filter input",
        "",
    )
    observed = {k: parse.canonical_sources(v) for k, v in accepted.items()}
    expected = {
        (int(r["port"]), r["proto"]): parse.canonical_sources(set(r["from"]))
        for r in c.e("firewall_rules")
    }
    for (port, proto), sources in sorted(expected.items()):
        got = observed.get((port, proto), set())
        name = next(
            r["name"] for r in c.e("firewall_rules") if int(r["port"]) == port and r["proto"] == proto
        )
        clause = IP_C if port == 22 else BOUNDARY
        c.add(
            f"firewall.{port}/{proto}",
            clause,
            f"{name} ({port}/{proto}) only from its listed peers",
            ", ".join(sorted(sources)),
            ", ".join(sorted(got)) or "closed",
            got == sources,
            "nft list chain inet pbox_filter input",
            "\n".join(ln.strip() for ln in out.stdout.splitlines() if f"dport {port} " in ln),
        )
    extra = sorted(set(observed) - set(expected))
    c.add(
        "firewall.no_other_ports",
        IP_B,
        "no port open beyond the catalog",
        "none",
        ", ".join(f"{p}/{proto}" for p, proto in extra) or "none",
        not extra,
        "nft list chain inet pbox_filter input",
        "",
    )


def integrity(c: Ctx) -> None:
    if not c.e("aide_enabled"):
        return
    conf = "/etc/aide/aide.conf"
    cmd = f"aide --check --config {conf}"
    out = c.run(cmd)
    # aide --check: 0 = no change; 1..7 = added/removed/changed files; >= 14 = error (no baseline, ...).
    summary = "\n".join(
        ln
        for ln in out.stdout.splitlines()
        if ln.strip().startswith(("Added", "Removed", "Changed", "f", "d", "l")) or "entries" in ln
    )[:800]
    c.add(
        "aide.baseline",
        TV,
        "file-integrity baseline present and matching",
        "no change since the baseline",
        {0: "no change"}.get(out.rc, f"changes found (rc {out.rc})" if out.rc < 14 else f"error rc {out.rc}"),
        out.rc == 0,
        cmd,
        summary or out.stderr,
    )
    c.unit("aide.daily", TV, "integrity checked daily", "pbox-aide-check.timer", want="enabled")


HOST_CHECKS: list[Callable[[Ctx], None]] = [
    identification,
    login_failures,
    ssh,
    administrators,
    file_permissions,
    minimal,
    sysctls,
    audit,
    logs,
    firewall,
    integrity,
]
