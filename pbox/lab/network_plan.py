"""The lab's addressing: one private bridge, the controller on .1, hosts from the profile.

Profiles are written for slot 0 (10.213.0.0/24); a lab in another slot (PBOX_LAB_SLOT) keeps each
host's last octet in its own subnet, 10.213.<slot>.0/24, with its own bridge and link names.
"""

import ipaddress

from pbox.paths import LAB_SLOT

PROFILE_SUBNET = ipaddress.IPv4Network("10.213.0.0/24")
SUBNET = ipaddress.IPv4Network(f"10.213.{LAB_SLOT}.0/24")
CONTROLLER_IP = SUBNET.network_address + 1
BRIDGE = f"pbox{LAB_SLOT}"
APT_PROXY_PORT = 3142  # apt-cacher-ng on the bridge address
ARTIFACT_PORT = 8088  # static HTTP server for offline artifacts (MinIO binary, ...)
_SUFFIX = str(LAB_SLOT) if LAB_SLOT else ""
NETNS_PREFIX = f"pbox{_SUFFIX}-"  # one network namespace per host: pbox-<host>
LINK_PREFIX = f"pb{_SUFFIX}-"  # controller-side veth / tap of a host: pb-<host> (≤ 15 characters)
LAB_CGROUP = f"pbox-lab{_SUFFIX}"


def place(address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    """A profile address (slot 0) moved into this lab's subnet."""
    return SUBNET.network_address + (int(address) - int(PROFILE_SUBNET.network_address))


def artifact_url(name: str) -> str:
    """URL under which lab hosts fetch a cached artifact, as from an offline bundle."""
    return f"http://{CONTROLLER_IP}:{ARTIFACT_PORT}/{name}"
