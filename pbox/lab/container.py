"""A lab host as a systemd-nspawn container booted from an overlay of the base image."""

import subprocess
from pathlib import Path

from pbox.lab import process
from pbox.lab.profile import LabHost


def overlay_dirs(state: Path) -> tuple[Path, Path, Path]:
    return state / "upper", state / "work", state / "rootfs"


def mount_root(base: Path, state: Path) -> Path:
    """Mount the host's root: the shared base below, the host's own changes above."""
    upper, work, root = overlay_dirs(state)
    for d in (upper, work, root):
        d.mkdir(parents=True, exist_ok=True)
    if not is_mounted(root):
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={base},upperdir={upper},workdir={work}", str(root)], check=True)
    return root


def is_mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def nspawn_argv(host: LabHost, root: Path) -> list[str]:
    return [
        "systemd-nspawn", "--boot", "--quiet",
        f"--directory={root}", f"--machine={host.name}",
        # No machined on the controller: do not register, stay in the cgroup we were started in.
        "--register=no", "--keep-unit",
        # The host's own namespace; --private-network gives the container CAP_NET_ADMIN in it.
        "--private-network", f"--network-namespace-path=/run/netns/{host.netns}",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
    ]


def start(host: LabHost, root: Path, log: Path) -> int:
    return process.spawn_in_cgroup(nspawn_argv(host, root), host.name, log)


def stop(host: LabHost, pid: int | None) -> None:
    """Power off cleanly (SIGTERM to nspawn), and end whatever is left in the host's cgroup."""
    if pid is not None:
        process.terminate(pid, timeout=30)
    process.kill_cgroup(host.name)


def unmount_root(state: Path) -> None:
    root = overlay_dirs(state)[2]
    if is_mounted(root):
        subprocess.run(["umount", str(root)], check=False)
        if is_mounted(root):
            subprocess.run(["umount", "--lazy", str(root)], check=True)
