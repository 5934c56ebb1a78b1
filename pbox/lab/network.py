"""The lab network: one bridge on the controller, one network namespace and veth per host.

Hosts get a static address and no default route, and the controller does not forward for them,
so nothing leaves the lab except through the proxy on the bridge address.
"""

import json
import subprocess

from pbox.lab.network_plan import BRIDGE, CONTROLLER_IP, LINK_PREFIX, NETNS_PREFIX, SUBNET
from pbox.lab.profile import LabHost


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def lab_links() -> list[str]:
    """The controller-side links the lab owns (bridge, veths, taps), found by name."""
    links = json.loads(_ip("-json", "link", "show").stdout or "[]")
    return [lk["ifname"] for lk in links
            if lk["ifname"] == BRIDGE or lk["ifname"].startswith(LINK_PREFIX)]


def lab_namespaces() -> list[str]:
    out = json.loads(_ip("-json", "netns", "list").stdout or "[]")
    return [ns["name"] for ns in out if ns["name"].startswith(NETNS_PREFIX)]


def ensure_bridge() -> None:
    if not link_exists(BRIDGE):
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{CONTROLLER_IP}/{SUBNET.prefixlen}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def ensure_container_net(host: LabHost) -> None:
    """A namespace for the host with `eth0` (its end of a veth) addressed and up."""
    if host.netns not in lab_namespaces():
        _ip("netns", "add", host.netns)
    if not link_exists(host.link):
        _ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
    _ip("link", "set", host.link, "master", BRIDGE, "up")
    _ip("-n", host.netns, "link", "set", "lo", "up")
    addr = f"{host.address}/{SUBNET.prefixlen}"
    if addr not in _ip("-n", host.netns, "-brief", "addr", "show", "dev", "eth0").stdout:
        _ip("-n", host.netns, "addr", "add", addr, "dev", "eth0")
    _ip("-n", host.netns, "link", "set", "eth0", "up")


def ensure_tap(host: LabHost) -> None:
    """A tap on the bridge for a KVM guest; the guest sets its own address."""
    if not link_exists(host.link):
        _ip("tuntap", "add", "dev", host.link, "mode", "tap")
    _ip("link", "set", host.link, "master", BRIDGE, "up")


def remove_all() -> None:
    """Delete every namespace, veth, tap and the bridge that the lab made (by their names)."""
    for ns in lab_namespaces():
        _ip("netns", "delete", ns, check=False)
    for name in lab_links():
        if name != BRIDGE:
            _ip("link", "delete", name, check=False)
    if link_exists(BRIDGE):
        _ip("link", "delete", BRIDGE, check=False)
