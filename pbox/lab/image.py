"""The lab's base root filesystem: made once with debootstrap, cached, shared read-only by hosts.

Each host boots from an overlay whose lower layer is this directory; `personalize` then gives the
host what must be its own (hostname, machine-id, SSH host keys, admin account, apt proxy).
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from pbox.lab.apt_sources import AptSource, codename, debian_sources, main_mirror
from pbox.lab.network_plan import APT_PROXY_PORT, CONTROLLER_IP
from pbox.lab.profile import LabHost, Profile
from pbox.paths import CACHE

Progress = Callable[[str], None]

# Bump when the recipe below changes: the cache key includes it, so old images are not reused.
RECIPE_VERSION = 3
PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt",
            "sudo", "iproute2", "ca-certificates")
ADMIN_USER = "pbox"  # the operator's account on every host: SSH key only, sudo


def _quiet(_: str) -> None:
    pass


def _image_key(release: str, sources_text: str) -> str:
    recipe = json.dumps([RECIPE_VERSION, release, PACKAGES, sources_text])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def base_image_dir(cache: Path | None = None) -> Path:
    release = codename()
    sources = debian_sources(release=release)
    text = "\n".join(s.deb822() for s in sources)
    return (cache or CACHE) / "lab" / f"base-{release}-{_image_key(release, text)}"


def ensure_base_image(progress: Progress = _quiet, cache: Path | None = None) -> Path:
    """Return the cached base rootfs, building it with debootstrap the first time (~1 min)."""
    release = codename()
    sources = debian_sources(release=release)
    target = base_image_dir(cache)
    if (target / ".complete").exists():
        return target / "rootfs"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two labs coming up at once (two slots) build it once: the second waits, then finds it.
    with (target.parent / f".{target.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            _build(target, release, sources, progress)
    return target / "rootfs"


def _build(target: Path, release: str, sources: list[AptSource], progress: Progress) -> None:
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        root = work / "rootfs"
        mirror = main_mirror(sources, release)
        progress(f"debootstrap {release} from {mirror.uri} (minbase + {len(PACKAGES)} packages)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             "--components=main", release, str(root), mirror.uri],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        progress("configuring the base image (apt sources, fresh package lists)")
        _configure_base(root, "\n".join(s.deb822() for s in sources))
        (work / ".complete").write_text(release + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"building the base image failed: {(e.stderr or '').strip()[-2000:]}") from e
    finally:
        if work.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def _configure_base(root: Path, sources: str) -> None:
    (root / "etc/apt/sources.list").write_text("", encoding="utf-8")
    (root / "etc/apt/sources.list.d/debian.sources").write_text(sources, encoding="utf-8")
    (root / "etc/dpkg/dpkg.cfg.d/pbox-unsafe-io").write_text("force-unsafe-io\n", encoding="utf-8")
    (root / "etc/apt/apt.conf.d/10pbox-no-cache").write_text(
        'APT::Keep-Downloaded-Packages "false";\nAPT::Install-Recommends "false";\n', encoding="utf-8")
    # Fresh lists in the base: hosts need no refresh at first, so they never race on the proxy.
    subprocess.run(["chroot", str(root), "apt-get", "update", "-qq"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True)
    # Each host must get its own identity: none is baked into the base.
    (root / "etc/machine-id").write_text("", encoding="utf-8")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # Units that have nothing to do in a lab host and would only make boot 'degraded'.
    for unit in ("systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                 "e2scrub_reap.service"):
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def personalize(root: Path, host: LabHost, profile: Profile, pubkey: str) -> str:
    """Give a host root its own identity; return its SSH host public key (ed25519) for known_hosts."""
    etc = root / "etc"
    (etc / "hostname").write_text(host.name + "\n", encoding="utf-8")
    (etc / "machine-id").write_text(uuid.uuid4().hex + "\n", encoding="utf-8")
    # Like a host with a static address: its own name resolves to that address, not 127.0.1.1.
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{CONTROLLER_IP}\tcontroller"]
    lines += [f"{h.address}\t{h.name}" for h in profile.hosts]
    (etc / "hosts").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    subprocess.run(["ssh-keygen", "-A", "-f", str(root)], check=True, stdout=subprocess.DEVNULL)
    proxy = f"http://{CONTROLLER_IP}:{APT_PROXY_PORT}"
    (etc / "apt/apt.conf.d/01pbox-proxy").write_text(
        f'Acquire::http::Proxy "{proxy}";\nAcquire::https::Proxy "{proxy}";\n', encoding="utf-8")
    _add_admin(root, pubkey)
    return (etc / "ssh/ssh_host_ed25519_key.pub").read_text(encoding="utf-8").split(" ")[:2][1]


def _add_admin(root: Path, pubkey: str) -> None:
    if subprocess.run(["chroot", str(root), "id", ADMIN_USER], capture_output=True).returncode != 0:
        subprocess.run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash",
                        "--groups", "sudo", ADMIN_USER], check=True)
    home = root / "home" / ADMIN_USER
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text(pubkey.strip() + "\n", encoding="utf-8")
    (ssh / "authorized_keys").chmod(0o600)
    uid, gid = (int(subprocess.run(["chroot", str(root), "id", flag, ADMIN_USER], capture_output=True,
                                   text=True, check=True).stdout) for flag in ("-u", "-g"))
    for p in (ssh, ssh / "authorized_keys"):
        os.chown(p, uid, gid)
    sudoers = root / "etc/sudoers.d" / ADMIN_USER
    sudoers.write_text(f"{ADMIN_USER} ALL=(ALL) NOPASSWD: ALL\n", encoding="utf-8")
    sudoers.chmod(0o440)
