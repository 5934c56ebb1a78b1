"""`pbox lab up/down/status`: the whole lab's lifecycle, with its state on disk.

The state file records every PID the lab started, so `down` ends exactly those; `down` then also
sweeps by name (namespaces, links, mounts under the state dir, cgroups), so a crashed lab whose
state is lost is still cleaned.
"""

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbox.artifacts import ensure_minio
from pbox.lab import container, network, process, services
from pbox.lab.image import ADMIN_USER, ensure_base_image, personalize
from pbox.lab.inventory import ssh_args
from pbox.lab.inventory import write as write_inventory
from pbox.lab.profile import LabHost, Profile, load_profile
from pbox.paths import LAB_INVENTORY, LAB_STATE

Progress = Callable[[str], None]
BOOT_TIMEOUT = 300.0  # a TCG-emulated guest under load takes ~60 s
REQUIRED_TOOLS = ("systemd-nspawn", "debootstrap", "ip", "ssh", "ssh-keygen", "mount", "chroot")


class LabError(RuntimeError):
    """Something the operator must fix before the lab can run."""


@dataclass
class LabState:
    profile: str
    pids: dict[str, int] = field(default_factory=dict)  # host or service name -> PID

    @staticmethod
    def path() -> Path:
        return LAB_STATE / "state.json"

    @classmethod
    def load(cls) -> "LabState | None":
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(data["profile"], {k: int(v) for k, v in data.get("pids", {}).items()})

    def save(self) -> None:
        LAB_STATE.mkdir(parents=True, exist_ok=True)
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps({"profile": self.profile, "pids": self.pids}, indent=1), encoding="utf-8")
        tmp.replace(self.path())

    def running(self, name: str) -> bool:
        return name in self.pids and process.alive(self.pids[name])


def ssh_key() -> Path:
    return LAB_STATE / "ssh" / "id_ed25519"


def known_hosts() -> Path:
    return LAB_STATE / "ssh" / "known_hosts"


def host_state(host: LabHost) -> Path:
    return LAB_STATE / "hosts" / host.name


def ssh_argv(host: LabHost, *command: str) -> list[str]:
    return ["ssh", "-i", str(ssh_key()), *ssh_args(known_hosts()).split(), "-o", "BatchMode=yes",
            f"{ADMIN_USER}@{host.address}", *command]


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts, systemd-nspawn)")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run `make deps`)")
    _ensure_inotify_instances()


# Every booted container's systemd holds inotify instances, all counted against root on the
# controller; the kernel's default of 128 runs out near 15 hosts (path units then fail at boot).
INOTIFY_INSTANCES = 1024


def _ensure_inotify_instances() -> None:
    knob = Path("/proc/sys/fs/inotify/max_user_instances")
    if int(knob.read_text()) < INOTIFY_INSTANCES:
        knob.write_text(f"{INOTIFY_INSTANCES}\n")


def _ensure_ssh_key() -> str:
    key = ssh_key()
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pbox-lab", "-f", str(key)],
                       check=True)
    return key.with_suffix(".pub").read_text(encoding="utf-8")


def _record_host_key(host: LabHost, key: str) -> None:
    path = known_hosts()
    lines = [ln for ln in (path.read_text(encoding="utf-8").splitlines() if path.exists() else [])
             if not ln.startswith(f"{host.address},")]
    lines.append(f"{host.address},{host.name} ssh-ed25519 {key}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _start_host(host: LabHost, profile: Profile, base: Path, pubkey: str) -> int:
    state = host_state(host)
    state.mkdir(parents=True, exist_ok=True)

    def customize(root: Path) -> None:
        _record_host_key(host, personalize(root, host, profile, pubkey))

    if host.kind == "kvm":
        from pbox.lab import kvm

        image = kvm.prepare_kvm_image(base)
        return kvm.start_guest(host, image, state, customize)
    network.ensure_container_net(host)
    root = container.mount_root(base, state)
    if not (state / ".personalized").exists():
        customize(root)
        (state / ".personalized").touch()
    return container.start(host, root, state)


def _booted(host: LabHost) -> bool:
    if not services.port_open(str(host.address), 22):
        return False
    r = subprocess.run(ssh_argv(host, "systemctl", "is-system-running", "--wait"),
                       capture_output=True, text=True, timeout=120, check=False)
    status = r.stdout.strip()
    if status in ("running", "degraded"):
        if status == "degraded":
            failed = subprocess.run(ssh_argv(host, "systemctl", "--failed", "--no-legend", "--plain"),
                                    capture_output=True, text=True, check=False).stdout.strip()
            raise LabError(f"{host.name} booted degraded; failed units:\n{failed}")
        return True
    return False


def up(profile_name: str, progress: Progress) -> Profile:
    """Bring up every host of a profile (idempotent: running hosts are left alone)."""
    check_prerequisites()
    profile = load_profile(profile_name)
    state = LabState.load()
    if state and state.profile != profile.name:
        raise LabError(f"the lab is up with profile {state.profile!r}; run `pbox lab down` first")
    state = state or LabState(profile.name)
    state.save()
    progress("base image")
    base = ensure_base_image(progress)
    if any(h.kind == "kvm" for h in profile.hosts):
        from pbox.lab import kvm

        progress("KVM guest image")
        kvm.prepare_kvm_image(base, progress)
    # Artifacts with no package, served to hosts like an operator's offline bundle.
    progress("artifacts (MinIO server: built once with `go install`, then cached)")
    ensure_minio(progress)
    pubkey = _ensure_ssh_key()
    network.ensure_bridge()
    if not state.running("apt-proxy"):
        progress("apt caching proxy on the bridge")
        state.pids["apt-proxy"] = services.start_apt_proxy(LAB_STATE)
    if not state.running("artifacts"):
        state.pids["artifacts"] = services.start_artifact_server(LAB_STATE)
    state.save()
    for host in profile.hosts:
        if not state.running(host.name):
            progress(f"starting {host.name} ({host.kind}, {host.address})")
            state.pids[host.name] = _start_host(host, profile, base, pubkey)
            state.save()
    inv = write_inventory(profile, ssh_key(), known_hosts(), LAB_INVENTORY)
    progress(f"inventory written to {inv}")
    t0 = time.monotonic()
    pending = list(profile.hosts)
    while pending:
        for host in list(pending):
            if not state.running(host.name):
                raise LabError(f"{host.name} stopped while booting; see {host_state(host)}/console.log")
            if _booted(host):
                progress(f"{host.name} is up")
                pending.remove(host)
        if pending and time.monotonic() - t0 > BOOT_TIMEOUT:
            names = ", ".join(h.name for h in pending)
            raise LabError(f"hosts not up after {BOOT_TIMEOUT:.0f}s: {names}")
        if pending:
            time.sleep(0.2)
    return profile


def _lab_mounts() -> list[Path]:
    prefix = str(LAB_STATE) + "/"
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()]
    return [Path(p) for p in points if p.startswith(prefix)]


def down(progress: Progress) -> None:
    """Stop every host and service, and remove everything the lab made. Safe on a crashed lab."""
    check_prerequisites()
    state = LabState.load()
    pids = dict(state.pids) if state else {}
    hosts = load_profile(state.profile).hosts if state else ()
    for host in hosts:
        progress(f"stopping {host.name}")
        if host.kind == "kvm":
            from pbox.lab import kvm

            if host.name in pids:
                kvm.stop_guest(pids.pop(host.name), host_state(host))
        else:
            container.stop(host, pids.pop(host.name, None))
    # Anything left in the lab's cgroups (hosts of a lost state file) is ended too.
    for cg in process.cgroup_dirs(""):
        if cg.is_dir():
            for sub in [p for p in cg.iterdir() if p.is_dir()]:
                process.kill_cgroup(sub.name)
    for name, pid in pids.items():
        progress(f"stopping {name}")
        process.terminate(pid)
    for mnt in sorted(_lab_mounts(), key=lambda p: -len(p.parts)):
        subprocess.run(["umount", str(mnt)], check=False)
        if container.is_mounted(mnt):
            subprocess.run(["umount", "--lazy", str(mnt)], check=True)
    progress("removing the lab network")
    network.remove_all()
    # `rm --one-file-system` refuses to descend into anything still mounted.
    subprocess.run(["rm", "-rf", "--one-file-system", str(LAB_STATE)], check=True)
    with contextlib.suppress(OSError):  # its parent too, when the lab was all it held
        LAB_STATE.parent.rmdir()
    shutil.rmtree(LAB_INVENTORY, ignore_errors=True)


@dataclass(frozen=True)
class HostStatus:
    host: LabHost
    running: bool
    ssh: bool


def status() -> tuple[LabState | None, list[HostStatus]]:
    state = LabState.load()
    if not state:
        return None, []
    profile = load_profile(state.profile)
    return state, [HostStatus(h, state.running(h.name), services.port_open(str(h.address), 22))
                   for h in profile.hosts]


def endpoints(profile: Profile) -> list[tuple[str, str]]:
    """Where to look once the system is deployed: each site's portal, API docs, object store, monitoring."""
    ca = Path("/var/lib/pbox/pki") / profile.name / "ca.crt"  # the pki role's controller-side CA
    found: list[tuple[str, str]] = []
    for h in profile.hosts:
        if "loadbalancer" in h.groups:
            found += [(f"portal ({h.name})", f"https://{h.address}/"),
                      (f"API docs ({h.name})", f"https://{h.address}/docs")]
        if "object_storage" in h.groups:
            found.append((f"object storage ({h.name})", f"https://{h.address}:9000 (console :9001)"))
        if "monitoring" in h.groups:
            found += [(f"Prometheus ({h.name})", f"http://{h.address}:9090/"),
                      (f"Alertmanager ({h.name})", f"http://{h.address}:9093/")]
    if found and ca.exists():
        found.append(("internal CA certificate", str(ca)))
    return found
