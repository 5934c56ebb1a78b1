"""The application's configuration on its hosts: transport TLS, keys outside the database, units
confined. The expected values are what roles/app and roles/postgresql deploy."""

import re

from pbox.audit_report.checks import AC_D, CONF
from pbox.audit_report.probe import Ctx

APP_ENV = "/etc/pbox/app.env"
APP_USER = "pbox-app"  # roles/app defaults: app_user
UNITS = ("app-web", "app-worker")
# The systemd confinement of roles/app/templates/app-*.service.j2 (8.1.4.2 d least privilege).
UNIT_HARDENING = {
    "User": APP_USER,
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
}


def redact(line: str) -> str:
    """Secrets never reach the report: passwords in URLs and key values are masked."""
    line = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", line)
    keys = "PBOX_FIELD_KEY|PBOX_AUDIT_KEY|PBOX_SECRET_KEY|PBOX_S3_SECRET_KEY"
    return re.sub(rf"^((?:{keys})=).*$", r"\1<redacted>", line)


def env_values(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip().strip("'\"")
    return found


def app(c: Ctx) -> None:
    cmd = f"stat -c '%a %U %G' {APP_ENV}"
    out = c.run(cmd)
    c.add(
        "app.env_mode",
        CONF,
        "app secrets file readable by root and the app only",
        f"640 root {APP_USER}",
        out.stdout.strip() or "absent",
        out.stdout.strip() == f"640 root {APP_USER}",
        cmd,
    )
    text = c.read(APP_ENV) or ""
    env = env_values(text)
    evidence = "\n".join(
        redact(ln)
        for ln in text.splitlines()
        if ln.startswith(("PBOX_DATABASE_URL", "PBOX_S3_ENDPOINT", "AWS_CA_BUNDLE", "PBOX_FIELD_KEY"))
    )
    db = env.get("PBOX_DATABASE_URL", "")
    c.add(
        "app.db_tls",
        CONF,
        "app ↔ database over TLS, server verified",
        "sslmode=verify-full with the internal CA",
        "verify-full"
        if "sslmode=verify-full" in db and "sslrootcert=" in db
        else (re.search(r"sslmode=(\w[\w-]*)", db) or [None, "no sslmode"])[1],
        "sslmode=verify-full" in db and "sslrootcert=" in db,
        f"cat {APP_ENV}",
        evidence,
    )
    s3 = env.get("PBOX_S3_ENDPOINT", "")
    c.add(
        "app.s3_tls",
        CONF,
        "app ↔ object store over TLS, server verified",
        "https endpoint, CA bundle",
        f"{s3.split(':')[0] or 'unset'}, CA bundle {'set' if env.get('AWS_CA_BUNDLE') else 'unset'}",
        s3.startswith("https://") and bool(env.get("AWS_CA_BUNDLE")),
        f"cat {APP_ENV}",
        evidence,
    )
    for check, var, what in (
        ("app.field_key", "PBOX_FIELD_KEY", "personal-data field key present (outside the database)"),
        (
            "app.audit_key",
            "PBOX_AUDIT_KEY",
            "audit-log chain key present (outside the database): the chain is keyed",
        ),
    ):
        ok = bool(re.fullmatch(r"[0-9a-fA-F]{64,}", env.get(var, "")))
        c.add(
            check,
            CONF,
            what,
            "64+ hex digits",
            "present" if ok else "missing or malformed",
            ok,
            f"cat {APP_ENV}",
            f"{var}=<redacted>",
        )
    props = ",".join(UNIT_HARDENING)
    for unit in UNITS:
        cmd = f"systemctl show {unit} -p {props}"
        got = dict(ln.split("=", 1) for ln in c.run(cmd).stdout.splitlines() if "=" in ln)
        wrong = {k: got.get(k, "unset") for k, v in UNIT_HARDENING.items() if got.get(k) != v}
        c.add(
            f"app.unit.{unit}",
            AC_D,
            f"{unit} runs confined as an unprivileged user",
            ", ".join(f"{k}={v}" for k, v in UNIT_HARDENING.items()),
            "as expected" if not wrong else ", ".join(f"{k}={v}" for k, v in wrong.items()),
            not wrong,
            cmd,
        )


def postgresql(c: Ctx) -> None:
    cmd = "sudo -u postgres psql -Atc 'SHOW ssl'"
    out = c.run(cmd)
    c.add(
        "postgresql.ssl",
        CONF,
        "database accepts TLS connections",
        "on",
        out.stdout.strip() or f"rc={out.rc}",
        out.stdout.strip() == "on",
        cmd,
        out.stdout + out.stderr,
    )


GROUP_CHECKS = {"app": app, "postgresql": postgresql}
