"""Role interfaces: one source (annotated defaults/main.yml), no drift, and real inventories pass them.

Ansible validates `meta/argument_specs.yml` when a role (or a tasks_from entry point) starts, against
the role's variables as templated for the host. A stricter type there fails a deploy, so the last
test templates every option the way a deploy would (role defaults under the inventory, the play's
and the include's vars on top) for every host of every lab profile and of `pbox init`'s inventories,
and validates them with Ansible's own ArgumentSpecValidator.
"""

import importlib.util
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbox import init
from pbox.lab import inventory
from pbox.lab.profile import available_profiles, load_profile
from pbox.paths import PLAYBOOKS, REPO

ROLES = REPO / "roles"
ROLE_NAMES = sorted(p.parent.parent.name for p in ROLES.glob("*/defaults/main.yml"))
# Controller facts a deploy would have gathered; only what the roles' defaults read.
FACTS = {"os_family": "Debian", "distribution_release": "bookworm", "memtotal_mb": 4096,
         "processor_vcpus": 2, "virtualization_role": "guest", "virtualization_type": "systemd-nspawn"}
# `pbox init` inventories, as its unit tests make them.
INIT_CITIES = {"centralized": (), "distributed": ("320100=nanjing",), "hybrid": ("320500=suzhou",)}


def _generator():
    spec = importlib.util.spec_from_file_location("role_interface", REPO / "scripts/role_interface.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["role_interface"] = module
    spec.loader.exec_module(module)
    return module


role_interface = _generator()


# --- (a) and (b): the generated files match, every variable has its own description ----------------


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_specs_and_readme_tables_match_defaults(role):
    """`python scripts/role_interface.py --check` would pass: regenerate and compare."""
    for path, content in role_interface.outputs(ROLES / role).items():
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.relative_to(REPO)} is out of date: run python scripts/role_interface.py")


def test_check_mode_exits_clean():
    assert role_interface.main(["--check"]) == 0


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_variable_has_its_own_description(role):
    groups = role_interface.read_role(ROLES / role)  # raises naming a variable without a comment
    variables = [v for g in groups for v in g.variables]
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text(encoding="utf-8"))
    assert [v.name for v in variables] == list(defaults)
    seen: dict[str, str] = {}
    for var in variables:
        assert len(var.description) >= 12, f"{role}: {var.name}: description too short"
        assert var.description not in seen, (
            f"{role}: {var.name} repeats the description of {seen.get(var.description)}")
        seen[var.description] = var.name


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_specs_are_typed_with_defaults(role):
    specs = yaml.safe_load((ROLES / role / "meta/argument_specs.yml").read_text(encoding="utf-8"))
    for entry, spec in specs["argument_specs"].items():
        assert spec.get("short_description"), f"{role}/{entry}: no short_description"
        if entry != "main":
            assert (ROLES / role / "tasks" / f"{entry}.yml").is_file(), f"{role}: {entry}: no tasks file"
        for name, opt in (spec.get("options") or {}).items():
            assert opt["type"] != "raw", f"{role}/{entry}: {name} is raw"
            assert ("default" in opt) != bool(opt.get("required")), f"{role}/{entry}: {name}"
            if opt["type"] == "list":
                assert "elements" in opt, f"{role}/{entry}: {name}: list without elements"


def test_annotation_errors_name_the_variable(tmp_path):
    role = tmp_path / "demo"
    (role / "defaults").mkdir(parents=True)
    (role / "defaults/main.yml").write_text("---\n# Documented.\ndemo_a: 1\ndemo_b: \"{{ x }}\"\n")
    with pytest.raises(role_interface.InterfaceError, match="demo_b: no description"):
        role_interface.read_role(role)
    (role / "defaults/main.yml").write_text("---\n# Documented.\ndemo_a: 1\n# Templated.\n"
                                            "demo_b: \"{{ x }}\"\n")
    with pytest.raises(role_interface.InterfaceError, match="demo_b: templated value"):
        role_interface.read_role(role)


# --- (c): what real inventories pass validates ------------------------------------------------------


@dataclass
class Use:
    """A role entry point run on a host pattern, with the vars of its play and of the include."""

    hosts: str
    role: str
    entry: str = "main"
    vars: dict[str, Any] = field(default_factory=dict)
    where: str = ""
    caller: str | None = None  # the role whose tasks include this one (its defaults are in scope)


def _includes(tasks: list[Any]) -> Iterator[dict[str, Any]]:
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key in ("include_role", "import_role"):
            key = key if key in task else f"ansible.builtin.{key}"
            if key in task:
                yield {**task[key], "_vars": task.get("vars") or {}}
        for key in ("block", "rescue", "always"):
            yield from _includes(task.get(key) or [])


def _entry(include: dict[str, Any]) -> str:
    return str(include.get("tasks_from", "main")).removesuffix(".yml")


def uses(loader) -> list[Use]:
    """Every role entry point the playbooks run, directly or through another role's tasks."""
    out: list[Use] = []
    for book in sorted(PLAYBOOKS.glob("*.yml")):
        for play in loader.load_from_file(str(book), trusted_as_template=True) or []:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            play_vars = dict(play.get("vars") or {})
            for role in play.get("roles") or []:
                name = role.get("role") if isinstance(role, dict) else role
                out.append(Use(play["hosts"], str(name), "main", play_vars, book.name))
            for section in ("pre_tasks", "tasks", "post_tasks"):
                for inc in _includes(play.get(section) or []):
                    out.append(Use(play["hosts"], inc["name"], _entry(inc), {**play_vars, **inc["_vars"]},
                                   book.name))
    # Roles including other roles' entry points (pki certificates, postgresql settings): on the hosts
    # of the including role's plays.
    for tasks_file in sorted(ROLES.glob("*/tasks/*.yml")):
        caller = tasks_file.parent.parent.name
        for inc in _includes(loader.load_from_file(str(tasks_file), trusted_as_template=True) or []):
            for use in [u for u in out if u.role == caller]:
                out.append(Use(use.hosts, inc["name"], _entry(inc), {**use.vars, **inc["_vars"]},
                               f"roles/{caller}/tasks/{tasks_file.name}", caller))
    return out


def _lab_inventories(tmp: Path) -> Iterator[tuple[str, Path, str | None]]:
    for profile in available_profiles():
        path = inventory.write(load_profile(profile), tmp / "key", tmp / "known_hosts",
                               tmp / f"lab-{profile}")
        yield f"lab {profile}", path, None


def _init_inventories(tmp: Path) -> Iterator[tuple[str, Path, str | None]]:
    for mode, cities in INIT_CITIES.items():
        written = init.write(init.Request(mode, "320000", cities, tmp / f"init-{mode}",
                                          vault_password_file=tmp / "init.pass"))  # one for all three
        yield f"pbox init {mode}", written.output, written.vault_password_file.read_text().strip()


_plugins_ready: list[bool] = []


def _validate_inventory(name: str, path: Path, vault_password: str | None, secrets_dir: Path) -> list[str]:
    from ansible.errors import AnsibleError, AnsibleUndefinedVariable
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret, VaultSecretsContext
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    if not _plugins_ready:  # what the CLI does once per process
        init_plugin_loader()
        for role_dir in ROLES.iterdir():
            add_all_plugin_dirs(str(role_dir))  # the roles' own filters (pbox_firewall_rules, ...)
        _plugins_ready.append(True)
    loader = DataLoader()
    if vault_password:
        secrets = [("default", VaultSecret(vault_password.encode()))]
        loader.set_vault_secrets(secrets)
        if VaultSecretsContext.current(optional=True) is None:  # what the CLI sets up once per process
            VaultSecretsContext.initialize(VaultSecretsContext(secrets))
    inv = InventoryManager(loader=loader, sources=[str(path)])
    manager = VariableManager(loader=loader, inventory=inv)
    # As a playbook run does, so `hostvars[...]` resolves.
    manager._hostvars = HostVars(inventory=inv, variable_manager=manager, loader=loader)
    specs = {r: loader.load_from_file(str(ROLES / r / "meta/argument_specs.yml"))["argument_specs"]
             for r in ROLE_NAMES}
    defaults = {r: loader.load_from_file(str(ROLES / r / "defaults/main.yml"), trusted_as_template=True) or {}
                for r in ROLE_NAMES}
    role_vars = {r: (loader.load_from_file(str(ROLES / r / "vars/main.yml"), trusted_as_template=True) or {})
                 if (ROLES / r / "vars/main.yml").is_file() else {} for r in ROLE_NAMES}
    known = {v for r in ROLE_NAMES for v in defaults[r]}
    problems, checked = [], 0
    host_vars_cache: dict[str, dict[str, Any]] = {}
    for use in uses(loader):
        spec = specs.get(use.role, {}).get(use.entry)
        if spec is None:
            continue
        options = spec.get("options") or {}
        for host in inv.get_hosts(use.hosts):
            if host.name not in host_vars_cache:
                host_vars_cache[host.name] = manager.get_vars(host=host)
            caller = {**defaults[use.caller], **role_vars[use.caller]} if use.caller else {}
            # Precedence as in a run: role defaults < inventory < role vars < play and include vars.
            variables = {**caller, **defaults[use.role], **host_vars_cache[host.name], **role_vars[use.role],
                         **use.vars,
                         "ansible_facts": FACTS, "playbook_dir": str(PLAYBOOKS),
                         # The password lookups write generated secrets here, not under /var/lib/pbox.
                         "pbox_secrets_dir": str(secrets_dir)}
            templar = Templar(loader=loader, variables=variables)
            values = {}
            for option in options:
                if option not in variables:
                    continue
                try:
                    values[option] = templar.template(variables[option])
                except AnsibleUndefinedVariable as e:
                    # A fact the calling tasks set at run time (set_fact, register): not known here.
                    missing = re.search(r"'(\w+)' is undefined", str(e))
                    if not missing or missing.group(1) in known:
                        problems.append(f"{name}: {host.name}: {use.role}/{use.entry}: {option}: {e}")
                except AnsibleError as e:
                    # A file on the controller that the operator provides (the MinIO bundle's checksum).
                    if "lookup" not in str(e):
                        problems.append(f"{name}: {host.name}: {use.role}/{use.entry}: {option}: {e}")
            result = ArgumentSpecValidator(options).validate(values, validate_role_argument_spec=True)
            checked += 1
            problems += [f"{name}: {host.name}: {use.role}/{use.entry} ({use.where}): {m}"
                         for m in result.error_messages]
    assert checked, f"{name}: no role entry point validated"
    return problems


@pytest.mark.parametrize("source", ["lab", "init"])
def test_real_inventories_pass_the_argument_specs(tmp_path, source):
    inventories = _lab_inventories(tmp_path) if source == "lab" else _init_inventories(tmp_path)
    problems = []
    for name, path, vault_password in inventories:
        problems += _validate_inventory(name, path, vault_password, tmp_path / "secrets")
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_entry_points_are_the_ones_playbooks_run():
    """Every tasks_from of a role with a spec has its entry point (else Ansible silently skips checks)."""
    from ansible.parsing.dataloader import DataLoader

    missing = set()
    for use in uses(DataLoader()):
        spec_file = ROLES / use.role / "meta/argument_specs.yml"
        specs = yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"]
        tasks_text = (ROLES / use.role / "tasks" / f"{use.entry}.yml").read_text(encoding="utf-8")
        names = set(yaml.safe_load((ROLES / use.role / "defaults/main.yml").read_text(encoding="utf-8")))
        if use.entry not in specs and any(re.search(rf"\b{n}\b", tasks_text) for n in names):
            missing.add(f"{use.role}/{use.entry}")
    assert not missing, f"entry points using role defaults but without a spec: {sorted(missing)}"
