"""The deployment's side of issue 15 point 8, checked on the role templates themselves (rendered with
Jinja2 as Ansible would): the load balancer overwrites every X-Client-* header the app reads and the
client's address headers; app.env trusts only loopback and the site's load balancers; no monitoring
web UI keeps a default password."""

import hashlib
import json
import re
from pathlib import Path

import jinja2
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def render(template: Path, **variables: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters["to_json"] = json.dumps
    env.filters["bool"] = lambda v: str(v).lower() in {"1", "true", "yes"}
    env.filters["hash"] = lambda v, alg: hashlib.new(alg, str(v).encode()).hexdigest()
    env.tests["match"] = lambda v, pattern: re.match(pattern, str(v)) is not None
    return env.from_string(template.read_text(encoding="utf-8")).render(
        ansible_managed="managed", **variables
    )


def headers_the_app_reads() -> set[str]:
    found = set()
    for path in (ROOT / "app").rglob("*.py"):
        found |= {h.lower() for h in re.findall(r"""["'](x-client-[a-z0-9-]+)["']""", path.read_text(), re.I)}
    return found


def proxied_locations(conf: str) -> list[str]:
    """The body of every `location` block that passes requests on (nginx blocks here do not nest)."""
    blocks = re.findall(r"location\s[^{]*\{(.*?)\n\s*\}", conf, re.S)
    return [b for b in blocks if "proxy_pass" in b]


def test_load_balancer_overwrites_every_client_header_the_app_trusts():
    conf = render(
        ROOT / "roles/loadbalancer/templates/pbox.conf.j2",
        loadbalancer_rate_limit="20r/s",
        loadbalancer_upstream_hosts=["app1"],
        hostvars={"app1": {"ansible_host": "10.0.0.11"}},
        loadbalancer_upstream_port=8000,
        loadbalancer_max_fails=3,
        loadbalancer_fail_timeout="10s",
        loadbalancer_server_names=["pbox.example"],
        loadbalancer_ssl_protocols="TLSv1.2 TLSv1.3",
        loadbalancer_ssl_ciphers=["ECDHE-ECDSA-AES128-GCM-SHA256"],
        loadbalancer_hsts_max_age=31536000,
        loadbalancer_client_max_body_size="12m",
        loadbalancer_rate_burst=40,
        loadbalancer_conn_limit=50,
        loadbalancer_upstream_tls_name="app.all.pbox.internal",
    )
    read = headers_the_app_reads()
    assert {"x-client-verify", "x-client-s-dn"} <= read  # app/exchange/tls.py; the scan finds them
    locations = proxied_locations(conf)
    assert locations
    for body in locations:
        set_here = {
            m.group(1).lower(): m.group(2)
            for m in re.finditer(r"^\s*proxy_set_header\s+(\S+)\s+(.+?);", body, re.M)
        }
        missing = read - set_here.keys()
        assert not missing, f"a client could send these straight to the app: {missing}"
        for header in read:  # from this connection's TLS, never a client-given value
            assert set_here[header].startswith("$ssl_client_"), (header, set_here[header])
        # the client's address: what nginx saw, not what the client claims
        assert set_here["x-real-ip"] == "$remote_addr"
        assert set_here["x-forwarded-for"].startswith("$remote_addr")


def app_env(**extra: object) -> dict[str, str]:
    variables = {
        "app_node_role": "province",
        "app_region_code": "320000",
        "app_db_user": "pbox_app",
        "app_db_password": "pw",
        "app_db_host": "10.0.0.21",
        "app_db_port": 5432,
        "app_db_name": "pbox",
        "app_s3_endpoint": "https://10.0.0.31:9000",
        "app_s3_access_key": "pbox-app",
        "app_s3_secret_key": "s3",
        "app_s3_bucket": "pbox-attachments",
        "app_secret_key": "secret",
        "app_listen_host": "0.0.0.0",
        "app_port": 8000,
        "app_workers": 2,
        "app_log_level": "INFO",
        "app_audit_verify_interval": 600,
        "app_worker_metrics_port": 9465,
        "app_field_key": "field",
        "app_audit_key": "audit",
        "app_audit_anchor_interval": 300,
        "app_vehicle_registry_url": "",
        "app_vehicle_registry_timeout": 5,
        "app_vehicle_registry_token_file": "",
        "app_vehicle_registry_ca_file": "",
        "app_vehicle_registry_cert_file": "",
        "app_vehicle_registry_key_file": "",
        "app_exchange_enabled": False,
        "app_crypto_suite": "sm",
        "app_loadbalancer_hosts": ["lb1", "lb2", "lb3"],
        "app_trusted_proxies": [],
        "hostvars": {
            "lb1": {"ansible_host": "10.0.0.5"},
            "lb2": {"ansible_host": "192.0.2.9", "pbox_address": "10.0.1.5"},
            "lb3": {"ansible_host": "lb3.example.gov.cn"},  # a DNS name: must be listed by hand
        },
        **extra,
    }
    text = render(ROOT / "roles/app/templates/app.env.j2", **variables)
    return dict(re.findall(r"^(PBOX_[A-Z_]+)='(.*)'$", text, re.M))


def test_app_trusts_only_loopback_and_the_sites_load_balancers():
    env = app_env()
    proxies = json.loads(env["PBOX_TRUSTED_PROXIES"])
    assert proxies == ["127.0.0.0/8", "::1/128", "10.0.0.5", "10.0.1.5"]
    parsed = Settings(trusted_proxies=proxies).trusted_proxies  # what the app makes of it
    assert [str(n) for n in parsed] == ["127.0.0.0/8", "::1/128", "10.0.0.5/32", "10.0.1.5/32"]
    more = json.loads(app_env(app_trusted_proxies=["10.9.0.0/24"])["PBOX_TRUSTED_PROXIES"])
    assert more[-1] == "10.9.0.0/24"
    assert "0.0.0.0/0" not in more


def test_app_env_names_the_vehicle_registry_files_only_when_set():
    """An empty URL means photo review only; each gateway file is passed only when the inventory sets it."""
    env = app_env()
    assert env["PBOX_VEHICLE_REGISTRY_URL"] == ""
    assert not [k for k in env if k.startswith("PBOX_VEHICLE_REGISTRY_") and k.endswith("_FILE")]
    env = app_env(app_vehicle_registry_url="https://gaj.example.gov.cn/verify",
                  app_vehicle_registry_ca_file="/etc/pbox/registry-ca.pem")
    assert env["PBOX_VEHICLE_REGISTRY_CA_FILE"] == "/etc/pbox/registry-ca.pem"
    settings = Settings(vehicle_registry_url=env["PBOX_VEHICLE_REGISTRY_URL"],
                        vehicle_registry_ca_file=env["PBOX_VEHICLE_REGISTRY_CA_FILE"])
    assert str(settings.vehicle_registry_ca_file) == "/etc/pbox/registry-ca.pem"


def test_app_default_trusts_loopback_only():
    assert [str(n) for n in Settings().trusted_proxies] == ["127.0.0.0/8", "::1/128"]


DEFAULT_CREDENTIAL = re.compile(
    r"admin_password\s*[:=]\s*['\"]?admin\b|admin:admin|GF_SECURITY_ADMIN_PASSWORD\s*[:=]\s*['\"]?admin\b"
    r"|password\s*[:=]\s*['\"]?(admin|changeme|password|prom-operator)['\"]?\s*$",
    re.I | re.M,
)


def test_no_monitoring_ui_keeps_a_default_password():
    places = [*(ROOT / "roles/monitoring").rglob("*"), *(ROOT / "monitoring").rglob("*")]
    for path in (p for p in places if p.is_file() and p.suffix in {".yml", ".yaml", ".j2", ".ini", ".json"}):
        hit = DEFAULT_CREDENTIAL.search(path.read_text(encoding="utf-8", errors="replace"))
        assert hit is None, f"{path.relative_to(ROOT)}: {hit.group(0)}"
    # Grafana (the one monitoring UI with accounts) gets the controller's generated secret
    defaults = yaml.safe_load((ROOT / "roles/monitoring/defaults/main.yml").read_text(encoding="utf-8"))
    secret = defaults["monitoring_grafana_admin_password"]
    assert "lookup('ansible.builtin.password'" in secret and "grafana_admin" in secret
    tasks = yaml.safe_load((ROOT / "roles/monitoring/tasks/grafana.yml").read_text(encoding="utf-8"))
    ini = next(t for t in tasks if "community.general.ini_file" in t and "loop" in t)
    settings = {(i["section"], i["option"]): i["value"] for i in ini["loop"]}
    assert settings[("security", "admin_password")] == "{{ monitoring_grafana_admin_password }}"
    assert settings[("users", "allow_sign_up")] == "false"
    assert settings[("auth.anonymous", "enabled")] == "false"
    assert ini.get("no_log") is True
    # set before Grafana first starts (it creates `admin` with it), and reset on one started earlier
    names = [t["name"] for t in tasks]
    start = names.index("Grafana enabled and running")
    assert names.index(ini["name"]) < start
    assert "Set grafana admin password" in ini["notify"]
    handlers = yaml.safe_load((ROOT / "roles/monitoring/handlers/main.yml").read_text(encoding="utf-8"))
    reset = next(t for t in handlers if t["name"] == "Set grafana admin password")
    command = reset["ansible.builtin.command"]
    assert reset.get("no_log") is True and command["stdin"] == "{{ monitoring_grafana_admin_password }}"
    assert "monitoring_grafana_admin_password" not in " ".join(command["argv"])  # not on a command line
