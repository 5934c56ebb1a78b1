"""Lint and static checks: the code and the distribution are clean before anything runs."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pbox.lab import inventory
from pbox.lab.profile import available_profiles, load_profile
from pbox.paths import PLAYBOOKS, REPO

BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_clean():
    r = run(str(BIN / "ruff"), "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_yamllint_clean():
    r = run(str(BIN / "yamllint"), "--strict", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ansible_lint_production_profile():
    r = run(str(BIN / "ansible-lint"), "--profile", "production", "--offline")
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]


@pytest.mark.parametrize("profile", available_profiles())
@pytest.mark.parametrize("playbook", sorted(p.name for p in PLAYBOOKS.glob("*.yml")))
def test_playbook_syntax_against_profile(tmp_path, profile, playbook):
    """Every playbook parses against the inventory the lab writes for every profile."""
    inv = inventory.write(load_profile(profile), tmp_path / "key", tmp_path / "known_hosts", tmp_path)
    r = run(str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(inv), str(PLAYBOOKS / playbook))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("profile", available_profiles())
def test_lab_profiles_are_valid(profile):
    prof = load_profile(profile)
    assert prof.hosts
    rendered = inventory.render(prof, Path("/k"), Path("/kh"))
    assert yaml.safe_load(yaml.safe_dump(rendered)) == rendered


def _roles_with_os_vars() -> list[str]:
    # A role loads them first thing: in tasks/preflight.yml (roles in parts) or tasks/main.yml.
    return sorted({p.parent.parent.name for p in (REPO / "roles").glob("*/tasks/*.yml")
                   if p.stem in ("main", "preflight") and "os_family'] }}.yml" in p.read_text()})


@pytest.mark.parametrize("role", _roles_with_os_vars())
def test_role_vars_for_both_os_families(role):
    """Every role that loads vars/<os_family>.yml has one for Debian and one for the RHEL family,
    defining the same names (the RHEL family is checked this far only: see docs/deployment-modes.md)."""
    vars_dir = REPO / "roles" / role / "vars"
    families = {f: yaml.safe_load((vars_dir / f"{f}.yml").read_text()) for f in ("Debian", "RedHat")}
    assert all(isinstance(v, dict) and v for v in families.values()), families
    assert families["Debian"].keys() == families["RedHat"].keys()
