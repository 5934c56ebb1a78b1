"""A lab host that is a KVM guest: its own kernel, for what containers cannot show.

auditd, `kernel.*` sysctls and kernel modules need a kernel of the host's own. Such a host boots
qemu-system-x86_64 with KVM from:

- a **KVM image**, made once from the lab's base rootfs and cached: Debian's `linux-image-amd64`
  installed into an overlay of the base (the base itself is never changed), the kernel and initrd
  copied out for direct boot, and the whole tree written into an ext4 disk (`mkfs.ext4 -d`);
- a **per-host disk**: a sparse copy of that disk, loop-mounted once so the host is personalised
  (hostname, keys, admin account, static address) before its first boot.

The guest is on the lab bridge through a tap (`LabHost.link`), with a static address set by
systemd-networkd matched on the MAC the lab derives from the host's address. The serial console
goes to `console.log` in the host's state directory; qemu daemonizes and its PID is recorded.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pbox import paths
from pbox.lab import network, process
from pbox.lab.network_plan import SUBNET
from pbox.lab.profile import LabHost

Progress = Callable[[str], None]

# Bump when the recipe below changes: the cache key includes it, so old images are not reused.
KVM_RECIPE_VERSION = 2
KERNEL_PACKAGES = ("linux-image-amd64", "initramfs-tools")
# The initrd holds only these (MODULES=list): a small initrd boots faster, and under TCG every
# byte unpacked counts. The root disk and NIC are virtio; everything else loads from the root fs.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "ext4")
DISK_SIZE = "8G"  # sparse: only what is written takes space
DISK_LABEL = "pbox-root"
NETWORK_FILE = "etc/systemd/network/10-pbox-lab.network"
QEMU = "qemu-system-x86_64"
BOOT_ARGS = ("root=/dev/vda", "rw", "console=ttyS0,115200", "panic=5", "loglevel=4")


class KvmError(RuntimeError):
    """A KVM guest could not be prepared or started."""


@dataclass(frozen=True)
class KvmImage:
    kernel: Path
    initrd: Path
    disk: Path
    kernel_release: str


def _quiet(_: str) -> None:
    pass


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    except subprocess.CalledProcessError as e:
        out = ((e.stdout or "") + (e.stderr or "")).strip()[-2000:]
        raise KvmError(f"{' '.join(argv[:4])}… failed ({e.returncode}):\n{out}") from e


# --- pure parts: names, addresses, command lines -------------------------------------------------

def mac_address(host: LabHost) -> str:
    """A stable, locally administered MAC derived from the host's address (unique in the lab)."""
    packed = host.address.packed
    return "52:54:00:" + ":".join(f"{b:02x}" for b in packed[1:])


def network_unit(host: LabHost) -> str:
    """systemd-networkd config: the static lab address on the NIC with the host's MAC.

    No gateway and no DNS, like the containers: nothing leaves the lab but through the proxy.
    """
    return ("[Match]\n"
            f"MACAddress={mac_address(host)}\n\n"
            "[Network]\n"
            f"Address={host.address}/{SUBNET.prefixlen}\n"
            "LinkLocalAddressing=no\n"
            "IPv6AcceptRA=no\n")


def image_dir(base_rootfs: Path) -> Path:
    """Where the KVM image of a given base lives: keyed by the base (and when it was made)."""
    # The lab's base marks itself complete beside its rootfs: a base rebuilt in place gets a new
    # stamp, so its KVM image is remade too.
    stamp = base_rootfs.parent / ".complete"
    made = stamp.stat().st_mtime_ns if stamp.exists() else 0
    recipe = f"{KVM_RECIPE_VERSION}:{base_rootfs.resolve()}:{made}:{KERNEL_PACKAGES}"
    key = hashlib.sha256(recipe.encode())
    return paths.CACHE / "lab" / f"kvm-{key.hexdigest()[:12]}"


def kvm_usable(dev: Path = Path("/dev/kvm"), modules: Path = Path("/sys/module")) -> bool:
    """True when /dev/kvm is hardware KVM (kvm_intel/kvm_amd) and lets us create a VM.

    Some nested hosts offer /dev/kvm from `kvm_pvm` (pagetable-based virtualization): it runs a
    stock Debian kernel by emulation, slower than qemu's own TCG (measured: no kernel banner
    after 5 min with the bzImage, 24 s to the banner with PVH direct boot, vs 2.4 s with TCG).
    """
    if not any((modules / m).is_dir() for m in ("kvm_intel", "kvm_amd")):
        return False
    kvm_create_vm = 0xAE01
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        vm = fcntl.ioctl(fd, kvm_create_vm, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    os.close(vm)
    return True


def choose_accel() -> bool:
    """Whether to use KVM: PBOX_KVM_ACCEL=kvm|tcg forces a choice, else hardware KVM if usable."""
    forced = os.environ.get("PBOX_KVM_ACCEL", "auto")
    if forced not in ("auto", "kvm", "tcg"):
        raise KvmError(f"PBOX_KVM_ACCEL must be auto, kvm or tcg, not {forced!r}")
    return forced == "kvm" or (forced == "auto" and kvm_usable())


def accel_args(kvm: bool) -> list[str]:
    if kvm:
        # The host CPU minus IA32_ARCH_CAPABILITIES: under this (nested) hypervisor qemu 7.2 aborts
        # with "failed to set MSR 0x10a" when that MSR is passed through.
        return ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
    # No usable KVM: full emulation, one host thread per vCPU. Slower, but the guest kernel is as
    # real (auditd, kernel.* sysctls, modules) as under KVM.
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def qemu_argv(host: LabHost, image: KvmImage, state_dir: Path, *, kvm: bool = True,
              cpus: int | None = None) -> list[str]:
    cpus = cpus or min(2, os.cpu_count() or 1)
    disk = state_dir / "disk.raw"
    return [
        QEMU, "-name", f"pbox-{host.name}", "-machine", "q35", *accel_args(kvm),
        "-m", str(host.memory_mb), "-smp", str(cpus),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", " ".join(BOOT_ARGS),
        # cache=unsafe: the disk is thrown away by `pbox lab down`, so skip host-side flushes.
        "-drive", f"file={disk},format=raw,if=virtio,cache=unsafe,discard=unmap",
        "-netdev", f"tap,id=lab,ifname={host.link},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=lab,mac={mac_address(host)}",
        # Entropy from the start, so nothing in early boot waits for the RNG.
        "-object", "rng-random,id=rng,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng",
        "-serial", f"file:{state_dir / 'console.log'}",
        "-daemonize", "-pidfile", str(state_dir / "qemu.pid"),
    ]


# --- the cached KVM image ------------------------------------------------------------------------

@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def _umount(path: Path) -> None:
    if _mounted(path) and subprocess.run(["umount", str(path)], check=False,
                                         capture_output=True).returncode != 0:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


@contextlib.contextmanager
def _mount(argv: list[str], target: Path) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    _run([*argv, str(target)])
    try:
        yield target
    finally:
        _umount(target)


@contextlib.contextmanager
def _chroot_mounts(root: Path) -> Iterator[None]:
    """/proc, /sys and /dev in a chroot, for the kernel's postinst and update-initramfs."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_mount(["mount", "-t", "proc", "proc"], root / "proc"))
        stack.enter_context(_mount(["mount", "-t", "sysfs", "sysfs"], root / "sys"))
        stack.enter_context(_mount(["mount", "--bind", "/dev"], root / "dev"))
        yield


def _load_image(d: Path) -> KvmImage | None:
    try:
        release = (d / ".complete").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    img = KvmImage(d / "vmlinuz", d / "initrd.img", d / "disk.raw", release)
    return img if all(p.is_file() for p in (img.kernel, img.initrd, img.disk)) else None


def prepare_kvm_image(base_rootfs: Path, progress: Progress | None = None) -> KvmImage:
    """Return the cached kernel, initrd and base disk for KVM guests, making them the first time."""
    progress = progress or _quiet
    target = image_dir(base_rootfs)
    img = _load_image(target)
    if img:
        return img
    with _lock(target.parent / ".kvm-image.lock"):
        img = _load_image(target)  # made by another process while we waited
        if img:
            return img
        work = Path(tempfile.mkdtemp(prefix=".kvm-build-", dir=target.parent))
        try:
            _build_image(base_rootfs, work, progress)
            shutil.rmtree(target, ignore_errors=True)
            work.rename(target)
            # Images of older bases or recipes are ~1 GB each and nothing boots them any more.
            for old in target.parent.glob("kvm-*"):
                if old != target:
                    subprocess.run(["rm", "-rf", "--one-file-system", str(old)], check=False)
        finally:
            if work.exists():
                for m in ("root/dev", "root/sys", "root/proc", "root"):
                    _umount(work / m)
                subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    img = _load_image(target)
    if img is None:
        raise KvmError(f"the KVM image in {target} is incomplete")
    return img


def _build_image(base: Path, work: Path, progress: Progress) -> None:
    upper, ovl_work, root = work / "upper", work / "ovl-work", work / "root"
    for d in (upper, ovl_work):
        d.mkdir()
    # An overlay of the base: the kernel goes into the guest's tree, never into the shared base.
    opts = f"lowerdir={base},upperdir={upper},workdir={ovl_work}"
    with _mount(["mount", "-t", "overlay", "overlay", "-o", opts], root):
        _configure_guest_tree(root)
        with _chroot_mounts(root):
            progress(f"installing the Debian kernel into the KVM image ({', '.join(KERNEL_PACKAGES)})")
            _install_kernel(root)
        release = _kernel_release(root)
        shutil.copyfile(root / "boot" / f"vmlinuz-{release}", work / "vmlinuz")
        shutil.copyfile(root / "boot" / f"initrd.img-{release}", work / "initrd.img")
        _check_initrd(root, release)
        progress(f"writing the KVM base disk (ext4, {DISK_SIZE} sparse)")
        _run(["mkfs.ext4", "-q", "-F", "-L", DISK_LABEL, "-d", str(root), str(work / "disk.raw"), DISK_SIZE])
    root.rmdir()
    shutil.rmtree(upper)
    shutil.rmtree(ovl_work)
    (work / ".complete").write_text(release + "\n", encoding="utf-8")


def _configure_guest_tree(root: Path) -> None:
    """What every KVM guest needs that a container does not: fstab, networkd, initrd modules."""
    (root / "etc/fstab").write_text(f"LABEL={DISK_LABEL}\t/\text4\terrors=remount-ro\t0\t1\n",
                                    encoding="utf-8")
    mods = root / "etc/initramfs-tools/modules"
    (mods.parent / "conf.d").mkdir(parents=True, exist_ok=True)
    mods.write_text("\n".join(INITRD_MODULES) + "\n", encoding="utf-8")
    (mods.parent / "conf.d/pbox-modules.conf").write_text("MODULES=list\n", encoding="utf-8")
    # A container gets its address from the lab; a guest sets its own with systemd-networkd.
    _run(["chroot", str(root), "systemctl", "enable", "systemd-networkd.service"])
    # No services may start inside the build chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
    policy.chmod(0o755)


def _install_kernel(root: Path) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["chroot", str(root), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
               *KERNEL_PACKAGES]
    try:
        _run(install, env=env)
    except KvmError:
        # The base's package lists may be older than the mirror: refresh once and retry.
        _run(["chroot", str(root), "apt-get", "update", "-qq"], env=env)
        _run(install, env=env)
    _run(["chroot", str(root), "apt-get", "clean"])
    (root / "usr/sbin/policy-rc.d").unlink()


def _kernel_release(root: Path) -> str:
    releases = sorted(p.name.removeprefix("vmlinuz-") for p in (root / "boot").glob("vmlinuz-*"))
    if len(releases) != 1:
        raise KvmError(f"expected one kernel in the KVM image, found {releases}")
    return releases[0]


def _check_initrd(root: Path, release: str) -> None:
    # lsinitramfs of the guest's own initramfs-tools: the controller need not have it.
    listing = _run(["chroot", str(root), "lsinitramfs", f"/boot/initrd.img-{release}"]).stdout
    missing = [m for m in ("virtio_blk", "virtio_net", "ext4") if f"/{m}.ko" not in listing]
    if missing:
        raise KvmError(f"the KVM initrd lacks {', '.join(missing)}")


# --- one guest -----------------------------------------------------------------------------------

def prepare_disk(host: LabHost, image: KvmImage, state_dir: Path,
                 root_customize: Callable[[Path], None]) -> Path:
    """The host's own disk: a sparse copy of the base disk, personalised before its first boot.

    Made once per host; a restarted guest keeps its disk (and so its identity and changes).
    """
    disk = state_dir / "disk.raw"
    if disk.exists():
        return disk
    tmp = state_dir / ".disk.raw.tmp"
    _run(["cp", "--sparse=always", str(image.disk), str(tmp)])
    with _mount(["mount", "-o", "loop", str(tmp)], state_dir / "mnt") as root:
        (root / NETWORK_FILE).write_text(network_unit(host), encoding="utf-8")
        root_customize(root)
    (state_dir / "mnt").rmdir()
    tmp.rename(disk)
    return disk


def start_guest(host: LabHost, image: KvmImage, state_dir: Path,
                root_customize: Callable[[Path], None]) -> int:
    """Boot the host's guest in the background and return qemu's PID.

    `root_customize` gets the guest's mounted root filesystem before the first boot (the lab
    passes its `personalize`).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    prepare_disk(host, image, state_dir, root_customize)
    network.ensure_tap(host)
    pidfile = state_dir / "qemu.pid"
    pidfile.unlink(missing_ok=True)
    kvm = choose_accel()
    argv = qemu_argv(host, image, state_dir, kvm=kvm)
    with (state_dir / "qemu.log").open("a", encoding="utf-8") as log:
        if not kvm:
            log.write("no usable hardware KVM here: the guest runs under TCG (emulation)\n")
        log.write(" ".join(argv) + "\n")
        log.flush()
        # -daemonize returns once the guest is set up, so errors surface here, not later. qemu
        # starts in the host's lab cgroup (its daemon child stays there), so `pbox lab down`
        # finds and ends it even when the lab's state file is lost.
        cgroups = process.cgroup_dirs(host.name)
        for d in cgroups:
            d.mkdir(parents=True, exist_ok=True)

        def enter_cgroup() -> None:
            for d in cgroups:
                (d / "cgroup.procs").write_text(str(os.getpid()))

        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False,
                              preexec_fn=enter_cgroup)
    if proc.returncode != 0 or not pidfile.exists():
        tail = (state_dir / "qemu.log").read_text(encoding="utf-8").strip().splitlines()[-5:]
        raise KvmError(f"qemu for {host.name} did not start:\n" + "\n".join(tail))
    return int(pidfile.read_text(encoding="utf-8").strip())


def _is_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return QEMU.encode() in cmdline.split(b"\0", 1)[0]


def stop_guest(pid: int, state_dir: Path, timeout: float = 10.0) -> None:
    """End a guest by PID: SIGTERM, wait, then SIGKILL. Its disk goes with the state dir.

    No clean shutdown first: the disk is thrown away, and qemu exits at once on SIGTERM.
    """
    # Never signal a PID that has since been reused by something other than a qemu.
    if _is_qemu(pid):
        process.terminate(pid, timeout=timeout)
    (state_dir / "qemu.pid").unlink(missing_ok=True)
    _umount(state_dir / "mnt")  # a crash while personalising may have left the disk mounted
