"""The report's expected values: the hardening role's defaults merged with the inventory, resolved
by Ansible itself (playbooks/audit.yml), so the report and the deploy share one source of truth."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pbox.paths import PLAYBOOKS, REPO


class ExpectedError(RuntimeError):
    """Ansible could not resolve the expected values (bad inventory, unreachable host, ...)."""


def _env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")]),
    }


def _vault_args(vault_password_file: Path | None) -> list[str]:
    return ["--vault-password-file", str(vault_password_file)] if vault_password_file else []


def inventory_hosts(
    inventory: Path, limit: str | None = None, vault_password_file: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Host → {address, groups} from `ansible-inventory --list`."""
    r = subprocess.run(
        ["ansible-inventory", "-i", str(inventory), "--list", *_vault_args(vault_password_file)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        check=False,
    )
    if r.returncode != 0:
        raise ExpectedError(f"ansible-inventory failed: {r.stderr.strip()[-1500:]}")
    data = json.loads(r.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    hosts: dict[str, dict[str, Any]] = {}

    def walk(group: str, trail: list[str]) -> None:
        node = data.get(group, {})
        for h in node.get("hosts", []):
            entry = hosts.setdefault(
                h, {"address": str(hostvars.get(h, {}).get("ansible_host", h)), "groups": []}
            )
            entry["groups"] = sorted(set(entry["groups"]) | {g for g in [*trail, group] if g not in ("all",)})
        for child in node.get("children", []):
            walk(child, [*trail, group])

    walk("all", [])
    if limit:
        wanted = set(limit.split(","))
        hosts = {h: v for h, v in hosts.items() if h in wanted or wanted & set(v["groups"])}
    return hosts


def expected_values(
    inventory: Path, limit: str | None = None, vault_password_file: Path | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Host → {hardening_*: value}, from the JSON output of playbooks/audit.yml; and host → why
    it has none (unreachable, failed)."""
    argv = [
        "ansible-playbook",
        "-i",
        str(inventory),
        str(PLAYBOOKS / "audit.yml"),
        *_vault_args(vault_password_file),
        *(["--limit", limit] if limit else []),
    ]
    env = {**_env(), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise ExpectedError(f"playbooks/audit.yml failed ({r.returncode}): {r.stderr.strip()[-1500:]}") from e
    found: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                if res.get("failed") or res.get("unreachable"):
                    problems.setdefault(host, str(res.get("msg", "failed"))[:500])
                elif task["task"]["name"].endswith("Expected hardening settings") and isinstance(
                    res.get("msg"), dict
                ):
                    found[host] = res["msg"]
    return found, problems
