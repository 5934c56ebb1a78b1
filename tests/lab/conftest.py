"""Lab tests: real systemd-nspawn hosts (and a KVM guest) on the lab bridge. Root only.

One lab per test module, shared by its tests; the module's last test takes it down and checks
that nothing is left.
"""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pbox.lab import lab, network, process

pytestmark = pytest.mark.lab


def _out(*argv: str) -> str:
    if not shutil.which(argv[0]):
        return ""
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def traces() -> dict[str, object]:
    """Everything the lab could leave behind on the controller, as comparable values."""
    state = lab.LabState.load()
    mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()
              if ln.split()[1].startswith(f"{lab.LAB_STATE}/")]
    return {
        "netns": network.lab_namespaces(),
        "links": network.lab_links(),
        "mounts": mounts,
        "cgroups": [str(d) for d in process.cgroup_dirs("") if d.exists()],
        "state_dir": lab.LAB_STATE.exists(),
        "inventory": lab.LAB_INVENTORY.exists(),
        "live_pids": sorted(p for p in (state.pids.values() if state else []) if process.alive(p)),
        "nft": _out("nft", "list", "ruleset"),
        "iptables": "\n".join(ln for ln in _out("iptables-save").splitlines() if not ln.startswith("#")),
    }


@pytest.fixture(scope="session", autouse=True)
def clean_controller():
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (they create namespaces, bridges, mounts)")
    lab.down(lambda _: None)  # a lab left by a crashed run must not leak into these tests
    return traces()


def host_run(host, *command: str, check: bool = True) -> str:
    # ssh hands the remote shell one string: quote, so each argument arrives as it was given.
    r = subprocess.run(lab.ssh_argv(host, shlex.join(command)), capture_output=True, text=True, timeout=300,
                       check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{host.name}: {' '.join(command)} failed ({r.returncode}): {r.stderr}")
    return r.stdout.strip()


def bring_up(profile: str):
    pids_before: list[int] = []
    try:
        prof = lab.up(profile, lambda _: None)
    except Exception:
        lab.down(lambda _: None)  # a lab that failed to come up must not block the next module's
        raise
    state = lab.LabState.load()
    assert state is not None
    pids_before.extend(state.pids.values())
    return prof, pids_before


def assert_down_leaves_nothing(baseline: dict[str, object], lab_pids: list[int]) -> None:
    lab.down(lambda _: None)
    after = traces()
    assert after == baseline, {k: after[k] for k in after if after[k] != baseline[k]}
    assert not [p for p in lab_pids if process.alive(p)], "lab processes still running after down"
