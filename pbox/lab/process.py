"""Processes the lab starts and later ends: by PID, and through the cgroup each container owns."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pbox.lab.network_plan import LAB_CGROUP

CGROUP_ROOT = Path("/sys/fs/cgroup")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_for(cond: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll a condition until true or timeout: no blind sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def cgroup_dirs(name: str) -> list[Path]:
    """The cgroup directories a lab process named `name` lives in, on v1-hybrid or pure v2 hosts."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure cgroup v2
        return [CGROUP_ROOT / LAB_CGROUP / name]
    return [CGROUP_ROOT / h / LAB_CGROUP / name for h in ("systemd", "unified")
            if (CGROUP_ROOT / h).is_dir()]


def spawn_in_cgroup(argv: list[str], name: str, log: Path) -> int:
    """Start a long-running process in its own session and cgroup; return its PID.

    nspawn creates payload/ and supervisor/ under its *current* cgroup, so two containers
    started from one cgroup would collide: each gets its own.
    """
    dirs = cgroup_dirs(name)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)

    def enter_cgroup() -> None:
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=enter_cgroup)
    return proc.pid


def spawn(argv: list[str], log: Path) -> int:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc.pid


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(name):
        if d.is_dir():
            for procs in d.rglob("cgroup.procs"):
                pids |= {int(p) for p in procs.read_text().split()}
    return pids


def terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM, wait for exit, then SIGKILL."""
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_for(lambda: not alive(pid), timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_for(lambda: not alive(pid), 5)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill_cgroup(name: str) -> None:
    """End whatever is left in a container's cgroup (a container whose nspawn was killed)."""
    for _ in range(3):
        pids = cgroup_pids(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not cgroup_pids(name), 5)
    remove_cgroup(name)


def _cgroup_tree(d: Path) -> list[Path]:
    """d and every cgroup below it, deepest first (a cgroup can only be removed without children).
    The kernel removes some on its own while we walk (a container's units ending): skip those."""
    found = [d]
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(d):
            if entry.is_dir(follow_symlinks=False):
                found[:0] = _cgroup_tree(Path(entry.path))
    return found


def remove_cgroup(name: str) -> None:
    for d in cgroup_dirs(name):
        for sub in _cgroup_tree(d) if d.is_dir() else []:
            with contextlib.suppress(FileNotFoundError):
                sub.rmdir()
        parent = d.parent
        if parent.name == LAB_CGROUP and parent.is_dir() and not any(p.is_dir() for p in parent.iterdir()):
            parent.rmdir()
