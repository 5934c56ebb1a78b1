"""The lab's fixed addressing: one private bridge, the controller on .1, hosts from the profile."""

import ipaddress

BRIDGE = "pbox0"
SUBNET = ipaddress.IPv4Network("10.213.0.0/24")
CONTROLLER_IP = ipaddress.IPv4Address("10.213.0.1")
APT_PROXY_PORT = 3142  # apt-cacher-ng on the bridge address
ARTIFACT_PORT = 8088  # static HTTP server for offline artifacts (MinIO binary, ...)
NETNS_PREFIX = "pbox-"  # one network namespace per host: pbox-<host>
LINK_PREFIX = "pb-"  # controller-side veth / tap of a host: pb-<host>


def artifact_url(name: str) -> str:
    """URL under which lab hosts fetch a cached artifact, as from an offline bundle."""
    return f"http://{CONTROLLER_IP}:{ARTIFACT_PORT}/{name}"
