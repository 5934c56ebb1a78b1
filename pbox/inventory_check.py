"""`pbox inventory check`: is an inventory one the playbooks can deploy, before anything runs.

Ansible itself loads the inventory (so any format, group_vars and host_vars count as in a deploy);
the rules come from the repository: the groups the playbooks use, the variables the roles need
(`required: true` in `meta/argument_specs.yml` without a default, plus the site variables below),
and the GB/T 2260 region table the application ships.
"""

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pbox.paths import PLAYBOOKS, REPO

if TYPE_CHECKING:
    from rich.console import Console

ROLES = REPO / "roles"
SITE_GROUP = re.compile(r"^site_[a-z][a-z0-9_]*$")
# Groups of every profile that no play targets yet: the monitoring and backup tiers (their roles come
# later) and `postgresql`, the umbrella of a site's primary and replicas.
RESERVED_GROUPS = frozenset({"monitoring", "backup", "postgresql"})
# Every site needs one host in each of these, or the roles' `... | first` lookups have nothing to find.
SITE_NEEDS = ("loadbalancer", "app", "postgresql_primary", "object_storage")
# Read by the playbooks without a default (secrets.yml), or defaulted by the roles to the example
# province (320000): a real inventory must say which site and node each host is.
REQUIRED_VARS: dict[str, str] = {
    "pbox_secrets_dir": "where the controller keeps generated secrets",
    "pbox_secret_names": "the secrets every site has",
    "pbox_site_group": "the site group of the host, `all` with one site",
    "pbox_node_role": "province or city",
    "pbox_region_code": "the site's GB/T 2260 region code",
}
# RFC 5737 documentation ranges: `pbox init` writes these where the operator has to fill in.
PLACEHOLDER_NETS = tuple(ipaddress.ip_network(n)
                         for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


# host → (its groups, its variables as ansible resolves them before templating)
HostTable = Mapping[str, tuple[list[str], Mapping[str, Any]]]


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hosts: int = 0
    sites: dict[str, int] = field(default_factory=dict)  # site group → host count

    @property
    def ok(self) -> bool:
        return not self.errors


# --- what the repository defines ------------------------------------------------------------


def _plays(playbooks: Path) -> list[dict[str, Any]]:
    plays: list[dict[str, Any]] = []
    for book in sorted(playbooks.glob("*.yml")):
        data = yaml.safe_load(book.read_text(encoding="utf-8")) or []
        plays.extend(p for p in data if isinstance(p, dict) and "hosts" in p)
    return plays


@cache
def known_groups(playbooks: Path = PLAYBOOKS, roles: Path = ROLES) -> frozenset[str]:
    """Groups a play targets or a role/playbook looks up in `groups[...]`."""
    names = set(RESERVED_GROUPS)
    for play in _plays(playbooks):
        names.update(p.strip() for p in re.split(r"[:,&!]", str(play["hosts"])) if p.strip())
    for path in [*playbooks.glob("*.yml"), *roles.rglob("*.yml"), *roles.rglob("*.j2")]:
        names.update(re.findall(r"groups\[['\"]([A-Za-z0-9_]+)['\"]\]", path.read_text(encoding="utf-8")))
    return frozenset(names - {"all", "localhost"})


def _role_groups(playbooks: Path) -> dict[str, set[str]]:
    """role → the groups whose hosts run it (from the plays' `roles:`)."""
    out: dict[str, set[str]] = defaultdict(set)
    for play in _plays(playbooks):
        for role in play.get("roles") or []:
            name = role.get("role") if isinstance(role, dict) else role
            out[str(name)].add(str(play["hosts"]))
    return out


@cache
def required_role_vars(playbooks: Path = PLAYBOOKS, roles: Path = ROLES) -> dict[str, dict[str, str]]:
    """group → {variable: role} for options `required: true` with no default anywhere."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for role, groups in _role_groups(playbooks).items():
        spec_file = roles / role / "meta/argument_specs.yml"
        defaults_file = roles / role / "defaults/main.yml"
        if not spec_file.is_file():
            continue
        spec = (yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}).get("argument_specs", {})
        options = (spec.get("main") or {}).get("options") or {}
        defaults = (yaml.safe_load(defaults_file.read_text(encoding="utf-8")) if defaults_file.is_file()
                    else {})
        for var, opt in options.items():
            if opt.get("required") and "default" not in opt and var not in (defaults or {}):
                for group in groups:
                    out[group][var] = role
    return dict(out)


# --- regions ----------------------------------------------------------------------------------


def region_problems(province: str, cities: Iterable[tuple[str, str]]) -> list[str]:
    """Errors for a province code and (where, city code) pairs, against the app's GB/T 2260 table."""
    from app.domain.reference import region_level, region_parent, regions

    table = regions()
    if province not in table or region_level(province) != "province":
        return [f"province code {province!r} is not a GB/T 2260 province (e.g. 320000 江苏省)"]
    errors = []
    for where, code in cities:
        if code not in table or region_level(code) != "city":
            errors.append(f"{where}: {code!r} is not a GB/T 2260 city code")
        elif region_parent(code) != province:
            errors.append(f"{where}: city {code} ({table[code]}) is not in province {province} "
                          f"({table[province]})")
    return errors


# --- the check ----------------------------------------------------------------------------------


def _load(inventory: Path, vault_password_file: Path | None) -> tuple[Any, Any]:
    from ansible import constants as C
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret
    from ansible.vars.manager import VariableManager

    C.INVENTORY_ANY_UNPARSED_IS_FAILED = True  # a file ansible cannot read is an error, not a warning
    loader = DataLoader()
    if vault_password_file:
        loader.set_vault_secrets([("default", VaultSecret(vault_password_file.read_bytes().strip()))])
    inv = InventoryManager(loader=loader, sources=[str(inventory)])
    return inv, VariableManager(loader=loader, inventory=inv)


def check(inventory: Path, vault_password_file: Path | None = None) -> Report:
    """Load `inventory` with ansible and report every problem as one line naming the host or group."""
    from ansible.errors import AnsibleError

    report = Report()
    if not inventory.exists():
        report.errors.append(f"inventory not found: {inventory}")
        return report
    try:
        inv, vm = _load(inventory, vault_password_file)
        hosts = {h.name: (sorted(g.name for g in h.get_groups()), vm.get_vars(host=h, include_hostvars=False))
                 for h in inv.get_hosts()}
    except AnsibleError as e:
        report.errors.append(f"{inventory}: ansible cannot load it: {str(e).splitlines()[0]}")
        return report
    report.hosts = len(hosts)
    if not hosts:
        report.errors.append(f"{inventory}: no hosts")
        return report
    report.errors += _group_errors(inv.groups)
    report.errors += _membership_errors(hosts)
    report.errors += _var_errors(hosts)
    errors, warnings = _address_problems(hosts)
    report.errors += errors
    report.warnings += warnings
    site_errors, report.sites = _site_errors(hosts)
    report.errors += site_errors
    return report


def _group_errors(groups: Iterable[str]) -> list[str]:
    allowed = known_groups()
    return [f"group {g}: unknown group (the playbooks use {', '.join(sorted(allowed))} and site_<name>)"
            for g in sorted(groups) if g not in ("all", "ungrouped") and g not in allowed
            and not SITE_GROUP.match(g)]


def _membership_errors(hosts: HostTable) -> list[str]:
    errors = []
    multi_site = any(SITE_GROUP.match(g) for groups, _ in hosts.values() for g in groups)
    for name, (groups, _) in sorted(hosts.items()):
        sites = [g for g in groups if SITE_GROUP.match(g)]
        services = [g for g in groups if g not in ("all", "ungrouped") and g not in sites]
        if not services and not sites:
            errors.append(f"host {name}: in no group (put it in one of {', '.join(sorted(known_groups()))})")
        elif not services:
            errors.append(f"host {name}: in no service group, only {', '.join(sites)}")
        if multi_site and len(sites) != 1:
            where = "no site group" if not sites else f"{len(sites)} site groups ({', '.join(sites)})"
            errors.append(f"host {name}: in {where}; each host belongs to exactly one site_<name>")
    return errors


def _var_errors(hosts: HostTable) -> list[str]:
    errors = []
    by_group = required_role_vars()
    for name, (groups, hv) in sorted(hosts.items()):
        required = dict(REQUIRED_VARS)
        for g in groups:
            required.update({v: f"required by role {r}" for v, r in by_group.get(g, {}).items()})
        errors += [f"host {name}: missing variable {v} ({why})" for v, why in required.items() if v not in hv]
        if "ansible_host" not in hv and "pbox_address" not in hv:
            errors.append(f"host {name}: missing host variable ansible_host (its address)")
        site = hv.get("pbox_site_group")
        if site is not None and site != "all" and site not in groups:
            errors.append(f"host {name}: pbox_site_group is {site!r} but the host is not in group {site}")
    return errors


def _address_problems(hosts: HostTable) -> tuple[list[str], list[str]]:
    errors, warnings, placeholders = [], [], []
    seen: dict[str, list[str]] = defaultdict(list)
    for name, (_, hv) in sorted(hosts.items()):
        address = hv.get("pbox_address", hv.get("ansible_host"))
        if address is None:
            continue
        seen[str(address)].append(name)
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            continue  # a DNS name is fine
        if any(ip in net for net in PLACEHOLDER_NETS):
            placeholders.append(name)
    if placeholders:  # one line: a fresh `pbox init` inventory has nothing but placeholders
        warnings.append(f"{len(placeholders)} hosts still have a placeholder address (RFC 5737 documentation "
                        f"range), set their real ones: {', '.join(placeholders)}")
    errors += [f"address {a} is used by several hosts: {', '.join(names)}" for a, names in seen.items()
               if len(names) > 1]
    return errors, warnings


def _site_errors(hosts: HostTable) -> tuple[list[str], dict[str, int]]:
    members: dict[str, list[tuple[list[str], Mapping[str, Any]]]] = defaultdict(list)
    for groups, hv in hosts.values():
        members[str(hv.get("pbox_site_group", "all"))].append((groups, hv))
    errors: list[str] = []
    roles: dict[str, tuple[str, str]] = {}  # site → (node role, region code)
    for site, entries in sorted(members.items()):
        for group in SITE_NEEDS:
            count = sum(group in groups for groups, _ in entries)
            if count == 0:
                errors.append(f"group {site}: no host in {group} (a site needs one)")
            elif group == "postgresql_primary" and count > 1:
                errors.append(f"group {site}: {count} hosts in {group} (a site has exactly one)")
        values = {(str(hv.get("pbox_node_role")), str(hv.get("pbox_region_code"))) for _, hv in entries}
        if len(values) > 1:
            errors.append(f"group {site}: its hosts disagree on pbox_node_role/pbox_region_code: "
                          f"{sorted(values)}")
        roles[site] = sorted(values)[0]
    errors += _site_region_errors(roles)
    return errors, {s: len(e) for s, e in sorted(members.items())}


def _site_region_errors(roles: Mapping[str, tuple[str, str]]) -> list[str]:
    provinces = [(s, code) for s, (node, code) in roles.items() if node == "province"]
    if len(provinces) != 1:
        names = ", ".join(s for s, _ in provinces) or "none"
        return [f"inventory: {len(provinces)} province sites ({names}); it needs exactly one"]
    bad_roles = [f"group {s}: pbox_node_role is {node!r} (province or city)" for s, (node, _) in roles.items()
                 if node not in ("province", "city")]
    cities = [(f"group {s}", code) for s, (node, code) in sorted(roles.items()) if node == "city"]
    return bad_roles + region_problems(provinces[0][1], cities)


def print_report(report: Report, inventory: Path, out: "Console") -> None:
    """Warnings, then errors, then one verdict line."""
    for line in report.warnings:
        out.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    for line in report.errors:
        out.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    sites = ", ".join(f"{s} ({n})" for s, n in report.sites.items())
    if report.ok:
        out.print(f"[green]inventory ok[/green]: {inventory}: {report.hosts} hosts; sites {sites}; "
                  f"{len(report.warnings)} warnings", highlight=False, soft_wrap=True)
    else:
        out.print(f"[red]inventory invalid[/red]: {inventory}: {len(report.errors)} errors", highlight=False)
