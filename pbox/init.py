"""`pbox init`: write a new production inventory for a real province from pbox/templates/inventory/.

The host layout per site is below; the wording of each file is in the templates. Every secret is
generated here and written vaulted (inline `!vault` values, so the files stay readable and lint
clean); the vault password goes to a 0600 file outside the inventory.
"""

import ipaddress
import json
import os
import re
import secrets
import shutil
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from pbox.inventory_check import PLACEHOLDER_NETS, region_problems
from pbox.paths import INVENTORIES, REPO
from pbox.paths import TEMPLATES as PBOX_TEMPLATES

if TYPE_CHECKING:
    import jinja2
    from rich.console import Console

Mode = Literal["centralized", "distributed", "hybrid"]
TEMPLATES = PBOX_TEMPLATES / "inventory"
VAULT_DIR = Path(os.environ.get("PBOX_VAULT_DIR", "/var/lib/pbox/vault"))
# The MinIO server of the offline bundle the example profiles pin.
MINIO_ARTIFACT = "minio-20260212201848-7aac2a2c5b7c"
SITE_NAME = re.compile(r"^[a-z][a-z0-9]{0,19}$")  # a group suffix and a DNS label: no '_' or '-'

# Production layout, every group on its own hosts (docs/deployment-modes.md: a province ≈ 12).
PROVINCE_LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lb1", ("loadbalancer",)), ("lb2", ("loadbalancer",)),
    ("app1", ("app",)), ("app2", ("app",)),
    ("db1", ("postgresql", "postgresql_primary")), ("db2", ("postgresql", "postgresql_replica")),
    *((f"s3-{i}", ("object_storage",)) for i in range(1, 5)),  # 4 hosts: one erasure-coded pool
    ("mon1", ("monitoring",)), ("backup1", ("backup", "restore_drill")),  # drills run on the backup host
)
# A city keeps the same redundancy for web and database, one MinIO host, monitoring with backup.
CITY_LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lb1", ("loadbalancer",)), ("app1", ("app",)), ("app2", ("app",)),
    ("db1", ("postgresql", "postgresql_primary")), ("db2", ("postgresql", "postgresql_replica")),
    ("s3-1", ("object_storage",)), ("ops1", ("monitoring", "backup", "restore_drill")),
)


class InitError(ValueError):
    """The request cannot produce a valid inventory (bad code, existing directory, ...)."""


@dataclass(frozen=True)
class PlannedHost:
    name: str
    address: str
    groups: tuple[str, ...]
    placeholder: bool


@dataclass(frozen=True)
class Site:
    name: str  # province, or the city's short name
    group: str  # site_<name>, or `all` when the inventory has one site
    node_role: Literal["province", "city"]
    region_code: str
    region_name: str
    portal_name: str
    hosts: tuple[PlannedHost, ...]

    @property
    def title(self) -> str:
        return f"The {self.name} site: {self.region_name} ({self.region_code}), a {self.node_role} node"


@dataclass(frozen=True)
class Plan:
    mode: Mode
    profile: str
    province_code: str
    province_name: str
    sites: tuple[Site, ...]
    crypto_suite: str = "sm"

    def groups(self) -> dict[str, list[str]]:
        """group → member host names, site groups first, in layout order."""
        out: dict[str, list[str]] = {}
        for site in self.sites:
            if site.group != "all":
                out[site.group] = [h.name for h in site.hosts]
        for site in self.sites:
            for host in site.hosts:
                for g in host.groups:
                    out.setdefault(g, []).append(host.name)
        return out

    def hosts(self) -> list[PlannedHost]:
        return [h for s in self.sites for h in s.hosts]


@dataclass(frozen=True)
class Request:
    mode: Mode
    province: str
    cities: tuple[str, ...] = ()  # CODE or CODE=name
    output: Path | None = None
    hosts_file: Path | None = None
    vault_password_file: Path | None = None
    domain: str = "pbox.internal"
    force: bool = False
    # The national suite (SM4-GCM fields, HMAC-SM3 audit chain, SM2 exchange signatures) is what a
    # new province's 密评 expects (docs/crypto-plan.md); `standard` keeps AES-GCM/SHA-256/Ed25519.
    crypto_suite: Literal["sm", "standard"] = "sm"


@dataclass
class Written:
    plan: Plan
    output: Path
    vault_password_file: Path
    vault_password_created: bool
    files: list[Path] = field(default_factory=list)


# --- the plan -------------------------------------------------------------------------------------


def parse_cities(raw: tuple[str, ...]) -> list[tuple[str, str]]:
    """`320100`, `320100=nanjing` (also comma-separated) → [(code, site name)]."""
    out: list[tuple[str, str]] = []
    for item in (part.strip() for chunk in raw for part in chunk.split(",")):
        if not item:
            continue
        code, _, name = item.partition("=")
        name = name.strip() or f"c{code.strip()}"
        if not SITE_NAME.match(name) or name == "province":
            raise InitError(f"city {item!r}: site name {name!r} must be lower-case letters and digits, "
                            "starting with a letter (and not 'province')")
        out.append((code.strip(), name))
    codes = [c for c, _ in out]
    names = [n for _, n in out]
    for seen, what in ((codes, "code"), (names, "site name")):
        dup = sorted({x for x in seen if seen.count(x) > 1})
        if dup:
            raise InitError(f"--cities: {what} {', '.join(dup)} given twice")
    return out


def load_addresses(path: Path | None) -> dict[str, str]:
    """The operator's host → address mapping (YAML)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InitError(f"--hosts-file {path}: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str | int) or v is None for v in data.values()):
        raise InitError(f"--hosts-file {path}: must be a mapping host: address")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def _placeholders(taken: set[str]) -> Iterator[str]:
    for net in PLACEHOLDER_NETS:
        for ip in net.hosts():
            if str(ip) not in taken:
                yield str(ip)


def _site(name: str, group: str, node_role: Literal["province", "city"], code: str, region: str,
          portal: str, layout: tuple[tuple[str, tuple[str, ...]], ...], addresses: dict[str, str],
          spare: Iterator[str]) -> Site:
    hosts = []
    for suffix, groups in layout:
        host = f"{name}-{suffix}"
        given = addresses.get(host)
        hosts.append(PlannedHost(host, given or next(spare), groups, given is None))
    return Site(name, group, node_role, code, region, portal, tuple(hosts))


def build_plan(req: Request, profile: str) -> Plan:
    from app.domain.reference import regions

    cities = parse_cities(req.cities)
    if req.mode == "centralized" and cities:
        raise InitError("--cities: a centralized inventory has no city sites (its cities use the provincial "
                        "portal); use --mode hybrid or distributed")
    if req.mode != "centralized" and not cities:
        raise InitError(f"--cities: a {req.mode} inventory needs at least one city site "
                        "(e.g. --cities 320100)")
    problems = region_problems(req.province, [(f"--cities {c}", c) for c, _ in cities])
    if problems:
        raise InitError("; ".join(problems))
    addresses = load_addresses(req.hosts_file)
    for address in addresses.values():
        _check_address(address)
    spare = _placeholders(set(addresses.values()))
    table = regions()
    multi = req.mode != "centralized"
    sites = [_site("province", "site_province" if multi else "all", "province", req.province,
                   table[req.province], f"portal.{req.domain}", PROVINCE_LAYOUT, addresses, spare)]
    sites += [_site(name, f"site_{name}", "city", code, table[code], f"{name}.{req.domain}", CITY_LAYOUT,
                    addresses, spare) for code, name in cities]
    plan = Plan(req.mode, profile, req.province, table[req.province], tuple(sites), req.crypto_suite)
    unknown = sorted(set(addresses) - {h.name for h in plan.hosts()})
    if unknown:
        raise InitError(f"--hosts-file: no host {', '.join(unknown)} in this layout "
                        f"(hosts: {', '.join(h.name for h in plan.hosts())})")
    return plan


def _check_address(address: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", address):
            raise InitError(f"--hosts-file: {address!r} is neither an IP address nor a DNS name") from None


# --- secrets --------------------------------------------------------------------------------------


def secret_vars(roles: Path = REPO / "roles") -> list[tuple[str, str]]:
    """(role variable, secret name) for every role default that generates a password on the controller.

    Read from the role defaults so a secret a role adds later is vaulted by `pbox init` too.
    """
    pattern = re.compile(r"lookup\('ansible\.builtin\.password',\s*\w+\s*~\s*'/(\w+)'")
    out = []
    for defaults in sorted(roles.glob("*/defaults/main.yml")):
        for var, value in (yaml.safe_load(defaults.read_text(encoding="utf-8")) or {}).items():
            m = pattern.search(str(value))
            if m:
                out.append((var, m.group(1)))
    return out


def secret_names(pairs: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(name for _, name in pairs))


def new_secret() -> str:
    # Same alphabet and length as the roles' password lookup: safe in URLs, env files and SQL.
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def vault_password(path: Path) -> tuple[str, bool]:
    """The password in `path`, or a new one written there (0600). Returns (password, created)."""
    if path.is_file():
        password = path.read_text(encoding="utf-8").strip()
        if not password:
            raise InitError(f"vault password file {path} is empty")
        return password, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password, True


def encrypt(password: str, value: str) -> str:
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(password.encode()))])
    return vault.encrypt(value.encode()).decode().rstrip("\n")


# --- rendering ------------------------------------------------------------------------------------


def _env() -> "jinja2.Environment":
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)  # noqa: S701 - YAML, not HTML
    env.filters["yaml_str"] = lambda v: json.dumps(str(v), ensure_ascii=False)  # JSON strings are YAML
    return env


def render(plan: Plan, password: str) -> dict[str, str]:
    """Relative path → content of every file of the inventory."""
    env = _env()
    pairs = secret_vars()
    common = {"plan": plan, "secret_vars": pairs, "secret_names": secret_names(pairs),
              "minio_artifact": MINIO_ARTIFACT}
    files = {"hosts.yml": env.get_template(f"{plan.mode}/hosts.yml.j2").render(common)}
    files["group_vars/all/main.yml"] = env.get_template(f"{plan.mode}/all.yml.j2").render(common,
                                                                                       site=plan.sites[0])
    for site in plan.sites:
        if site.group != "all":
            files[f"group_vars/{site.group}/main.yml"] = env.get_template(f"{plan.mode}/site.yml.j2").render(
                common, site=site)
        vaulted = [(name, encrypt(password, new_secret())) for name in secret_names(pairs)]
        files[f"group_vars/{site.group}/vault.yml"] = env.get_template("_shared/vault.yml.j2").render(
            common, site=site, vaulted=vaulted)
    return files


def default_output(req: Request) -> Path:
    return INVENTORIES / f"{req.province}-{req.mode}"


def write(req: Request) -> Written:
    """Plan, render and write the inventory; the caller validates it (pbox.inventory_check)."""
    output = (req.output or default_output(req)).resolve()
    if output.exists() and not req.force:
        raise InitError(f"{output} exists: choose another --output or pass --force to replace it")
    if output.exists() and not (output / "hosts.yml").is_file():
        # --force replaces an inventory, never an arbitrary directory such as the repository.
        raise InitError(f"{output} is not an inventory (no hosts.yml): refusing to replace it")
    plan = build_plan(req, output.name)
    pw_file = (req.vault_password_file or VAULT_DIR / f"{output.name}.pass").resolve()
    if pw_file.is_relative_to(output):
        raise InitError(f"--vault-password-file {pw_file} is inside the inventory: keep it outside")
    password, created = vault_password(pw_file)
    files = render(plan, password)
    if output.exists():
        shutil.rmtree(output)
    result = Written(plan, output, pw_file, created)
    for rel, text in files.items():
        path = output / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.files.append(path)
    return result


def print_written(w: Written, out: "Console") -> None:
    """The sites and hosts written, where the vault password is, what the operator does next."""
    from rich.table import Table

    table = Table(title=f"{w.plan.mode} inventory of {w.plan.province_name} ({w.plan.province_code})")
    for col in ("site group", "node", "region", "portal", "hosts"):
        table.add_column(col)
    for s in w.plan.sites:
        table.add_row(s.group, s.node_role, f"{s.region_code} {s.region_name}", s.portal_name,
                      str(len(s.hosts)))
    out.print(table)
    verb = "generated" if w.vault_password_created else "reused"
    out.print(f"wrote {len(w.files)} files to {w.output}; secrets vaulted with the password {verb} in "
              f"{w.vault_password_file} (keep it safe and out of the repository)", highlight=False,
              soft_wrap=True)
    out.print(f"next: replace the placeholder addresses in {w.output / 'hosts.yml'}, then\n"
              f"  pbox inventory check -i {w.output} && pbox deploy -i {w.output} "
              f"--vault-password-file {w.vault_password_file}", highlight=False,
              soft_wrap=True)
