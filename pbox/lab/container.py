"""A lab host as a systemd-nspawn container booted from an overlay of the base image."""

import subprocess
from pathlib import Path

from pbox.lab import process
from pbox.lab.profile import LabHost, data_dir_slug


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


def data_dir_sources(host: LabHost, state: Path) -> dict[str, Path]:
    """Each of the host's data directories -> the controller directory bound there."""
    return {d: state / "data" / data_dir_slug(d) for d in host.data_dirs}


def nspawn_argv(host: LabHost, root: Path, state: Path) -> list[str]:
    binds = [f"--bind={src}:{dest}" for dest, src in data_dir_sources(host, state).items()]
    return [
        "systemd-nspawn", "--boot", "--quiet",
        f"--directory={root}", f"--machine={host.name}",
        # No machined on the controller: do not register, stay in the cgroup we were started in.
        "--register=no", "--keep-unit",
        # The host's own namespace; --private-network gives the container CAP_NET_ADMIN in it.
        "--private-network", f"--network-namespace-path=/run/netns/{host.netns}",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
        *binds,
    ]


def mount_disk(image: Path, size: int, at: Path) -> None:
    """A disk of `size` bytes at `at`: a sparse ext4 image, loop-mounted (`down` unmounts it)."""
    if not image.exists():
        with image.open("wb") as f:
            f.truncate(size)
        # No blocks reserved for root: "full" means full, as the alert sees it.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    if not is_mounted(at):
        subprocess.run(["mount", "-o", "loop,discard", str(image), str(at)], check=True)


def start(host: LabHost, root: Path, state: Path) -> int:
    # The data directories live beside the overlay, so `pbox lab down` removes them with the host.
    for path, src in data_dir_sources(host, state).items():
        src.mkdir(parents=True, exist_ok=True)
        if path in host.disk_sizes:
            mount_disk(src.parent / f"{src.name}.img", host.disk_sizes[path], src)
    return process.spawn_in_cgroup(nspawn_argv(host, root, state), host.name, state / "console.log")


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
