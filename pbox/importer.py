"""`pbox import`: a bulk import of historical records (app-admin import, docs/operations.md) run on a
site's app host from the controller, the way the lab's checks run `pbox-admin roster import` there:
over SSH with the inventory's connection settings, `sudo pbox-admin ...` on the host.

The file goes to /var/tmp/pbox-import/ on the host, owned by the app's service account and readable
by it alone (the records carry plates and VINs); its name carries a digest of the content, so running
the same command again after an interruption finds the same file and `app-admin import` continues
after its last stored batch. The rejects file is fetched back beside the local file.
"""

import hashlib
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbox.inventory_check import _load

APP_GROUP = "app"
REMOTE_DIR = "/var/tmp/pbox-import"  # noqa: S108 - on the app host, made 0700 for the app account


class ImportTargetError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    host: str
    ssh: list[str]  # ssh argv up to and including user@address
    app_user: str


def ssh_prefix(variables: dict[str, Any], name: str) -> list[str]:
    """ssh's argv for a host from its Ansible connection variables."""
    argv = ["ssh", "-o", "BatchMode=yes"]
    if key := variables.get("ansible_ssh_private_key_file"):
        argv += ["-i", str(key)]
    if port := variables.get("ansible_port"):
        argv += ["-p", str(port)]
    argv += shlex.split(str(variables.get("ansible_ssh_common_args") or ""))
    user = variables.get("ansible_user")
    address = variables.get("ansible_host", name)
    return [*argv, f"{user}@{address}" if user else str(address)]


def resolve(inventory: Path, target: str, vault_password_file: Path | None = None) -> Target:
    """`target`: an app host's name, or a group (a site group such as site_nanjing, or `all`) whose
    first app host (by name) runs the import."""
    inv, vm = _load(inventory, vault_password_file)
    apps = {h.name for h in inv.get_hosts(APP_GROUP)}
    if target in apps:
        name = target
    elif target in inv.groups:
        candidates = sorted(apps & {h.name for h in inv.get_hosts(target)})
        if not candidates:
            raise ImportTargetError(f"{target}: no host of group `{APP_GROUP}` in it")
        name = candidates[0]
    else:
        raise ImportTargetError(f"{target}: neither an app host nor a group of {inventory}")
    variables = vm.get_vars(host=inv.get_host(name), include_hostvars=False)
    return Target(name, ssh_prefix(variables, name), str(variables.get("app_user", "pbox-app")))


def remote_name(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{REMOTE_DIR}/{h.hexdigest()[:16]}-{path.name}"


def run(target: Target, path: Path, app_args: list[str]) -> int:
    """Copy, import (with a terminal, so the progress bar shows), fetch the rejects; app-admin's exit
    status (0 all stored, 1 some lines rejected, 2 not importable; 255 ssh failed)."""
    remote = remote_name(path)
    user = shlex.quote(target.app_user)
    put = (f"sudo install -d -m 0700 -o {user} {REMOTE_DIR} && "
           f"sudo install -m 0600 -o {user} /dev/stdin {shlex.quote(remote)}")  # fmt: skip
    with path.open("rb") as f:
        copied = subprocess.run([*target.ssh, put], stdin=f, check=False)
    if copied.returncode != 0:
        return copied.returncode
    rejects = remote + ".rejects.tsv"
    command = shlex.join(["sudo", "pbox-admin", "import", remote, "--rejects", rejects, *app_args])
    status = subprocess.run([*target.ssh[:1], "-t", *target.ssh[1:], command], check=False).returncode
    fetched = subprocess.run([*target.ssh, f"sudo cat {shlex.quote(rejects)} 2>/dev/null"], check=False,
                             capture_output=True)  # fmt: skip
    if fetched.returncode == 0 and fetched.stdout:
        path.with_name(path.name + ".rejects.tsv").write_bytes(fetched.stdout)
    return status
