"""Lab profiles: which hosts a deployment mode needs in the lab, their groups and addresses.

A profile lives at `inventories/<profile>/lab.yml`. The lab may co-locate services on fewer hosts
than production, but keeps the same inventory groups and the same multi-host topology.
"""

import ipaddress
import posixpath
from dataclasses import dataclass, field
from typing import Literal

import yaml

from pbox.lab.network_plan import LINK_PREFIX, NETNS_PREFIX, PROFILE_SUBNET, place
from pbox.paths import INVENTORIES

HostKind = Literal["container", "kvm"]


class ProfileError(ValueError):
    """A profile that does not exist or does not describe a usable lab."""


@dataclass(frozen=True)
class LabHost:
    name: str
    address: ipaddress.IPv4Address
    groups: tuple[str, ...]
    kind: HostKind = "container"
    memory_mb: int = 1024  # only KVM guests have a memory size of their own
    vars: dict[str, object] = field(default_factory=dict)
    # Directories that are a filesystem of their own inside the host, as a data disk would be
    # (MinIO refuses drives on the root filesystem in distributed mode): bind mounts of a
    # per-host directory on the controller. Containers only.
    data_dirs: tuple[str, ...] = ()
    # Those of them that are a disk of a fixed size (bytes) rather than a directory: a sparse ext4
    # image, loop-mounted on the controller, so the host can really fill it up.
    disk_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.name}"

    @property
    def link(self) -> str:
        return f"{LINK_PREFIX}{self.name}"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    hosts: tuple[LabHost, ...]

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise ProfileError(f"no host {name!r} in profile {self.name!r}")


def available_profiles() -> list[str]:
    return sorted(p.parent.name for p in INVENTORIES.glob("*/lab.yml"))


def load_profile(name: str) -> Profile:
    path = INVENTORIES / name / "lab.yml"
    if not path.is_file():
        known = ", ".join(available_profiles()) or "none"
        raise ProfileError(f"unknown profile {name!r} (known: {known})")
    return parse_profile(name, yaml.safe_load(path.read_text(encoding="utf-8")))


def parse_profile(name: str, data: object) -> Profile:
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict) or not data["hosts"]:
        raise ProfileError(f"profile {name!r}: 'hosts' must be a non-empty mapping")
    hosts: list[LabHost] = []
    seen: set[ipaddress.IPv4Address] = {PROFILE_SUBNET.network_address + 1}  # the controller
    for hname, spec in data["hosts"].items():
        if not isinstance(spec, dict):
            raise ProfileError(f"profile {name!r}: host {hname!r} must be a mapping")
        # Interface names are limited to 15 characters: pb-<host> must fit.
        if not (isinstance(hname, str) and hname.isascii() and hname.replace("-", "").isalnum()
                and len(hname) <= 11 and hname[0].isalpha()):
            raise ProfileError(f"profile {name!r}: bad host name {hname!r} (letters, digits, '-', ≤ 11)")
        try:
            addr = ipaddress.IPv4Address(spec["address"])
        except (KeyError, ValueError) as e:
            raise ProfileError(f"profile {name!r}: host {hname!r} needs a valid 'address'") from e
        if addr not in PROFILE_SUBNET or addr in seen or addr in (PROFILE_SUBNET.network_address,
                                                                    PROFILE_SUBNET.broadcast_address):
            raise ProfileError(f"profile {name!r}: address {addr} of {hname!r} is outside {PROFILE_SUBNET} "
                               "or taken")
        seen.add(addr)
        groups = spec.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ProfileError(f"profile {name!r}: groups of {hname!r} must be a list of names")
        kind = spec.get("kind", "container")
        if kind not in ("container", "kvm"):
            raise ProfileError(f"profile {name!r}: kind of {hname!r} must be 'container' or 'kvm'")
        dirs, sizes = _data_dirs(name, hname, kind, spec)
        hosts.append(LabHost(hname, place(addr), tuple(groups), kind, int(spec.get("memory_mb", 1024)),
                             dict(spec.get("vars") or {}), dirs, sizes))
    return Profile(name, str(data.get("description", "")), tuple(hosts))


def data_dir_slug(path: str) -> str:
    """The controller-side directory name of a host's data directory: /srv/minio -> srv-minio."""
    return path.strip("/").replace("/", "-")


_SYSTEM_DIRS = ("bin", "boot", "dev", "etc", "lib", "proc", "run", "sbin", "sys", "usr")


_SIZE_UNITS = {"M": 1 << 20, "G": 1 << 30}


def _data_dirs(profile: str, host: str, kind: str, spec: dict) -> tuple[tuple[str, ...], dict[str, int]]:
    """`data_dirs` entries: a path (a directory of the controller), or {path: P, size: 512M|2G} (a disk)."""
    entries = spec.get("data_dirs") or []
    where = f"profile {profile!r}: data_dirs of {host!r}"
    if not isinstance(entries, list):
        raise ProfileError(f"{where} must be a list of paths")
    dirs: list[str] = []
    sizes: dict[str, int] = {}
    for e in entries:
        if isinstance(e, dict) and set(e) == {"path", "size"} and isinstance(e["path"], str):
            size = str(e["size"])
            if not (size[:-1].isdigit() and size[-1:] in _SIZE_UNITS and int(size[:-1]) > 0):
                raise ProfileError(f"{where}: size of {e['path']!r} must be like 512M or 2G, not {size!r}")
            sizes[e["path"]] = int(size[:-1]) * _SIZE_UNITS[size[-1]]
            dirs.append(e["path"])
        elif isinstance(e, str):
            dirs.append(e)
        else:
            raise ProfileError(f"{where} must be a list of paths (or {{path, size}} for a disk)")
    if dirs and kind != "container":
        raise ProfileError(f"{where}: only containers take data_dirs (a KVM guest has its own disk)")
    for d in dirs:
        # A clean absolute path below /, not a system directory the host needs from its image.
        if (not d.startswith("/") or posixpath.normpath(d) != d or d == "/" or ".." in d.split("/")
                or d.split("/")[1] in _SYSTEM_DIRS):
            raise ProfileError(f"{where}: {d!r} must be a clean absolute path outside the system directories")
    if len({data_dir_slug(d) for d in dirs}) != len(dirs):
        raise ProfileError(f"{where}: duplicate paths")
    return tuple(dirs), sizes
