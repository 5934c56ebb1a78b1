"""Controller-side services on the bridge address: the apt caching proxy and the artifact server."""

import socket
import sys
from pathlib import Path

from pbox.lab import process
from pbox.lab.apt_sources import debian_sources
from pbox.lab.network_plan import APT_PROXY_PORT, ARTIFACT_PORT, CONTROLLER_IP
from pbox.paths import ARTIFACTS, CACHE, LAB_SLOT


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_apt_proxy(state: Path) -> int:
    """apt-cacher-ng with our own config, bound to the bridge address only.

    Hosts use the controller's mirror URLs with this as their HTTP proxy. Each mirror is a
    `Remap` onto itself and `ForceManaged` refuses everything else, so the proxy reaches the
    controller's apt mirror and nothing more. The cache outlives the lab: repeated runs are fast.
    """
    remaps = "".join(f"Remap-pbox{i}: {s.uri.split('://', 1)[1]} ; {s.uri}\n"
                     for i, s in enumerate(debian_sources()))
    conf = state / "apt-cacher-ng"
    conf.mkdir(parents=True, exist_ok=True)
    cache = CACHE / f"apt-cacher-ng{LAB_SLOT or ''}"  # one cache per proxy: they would race on one
    cache.mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(
        f"CacheDir: {cache}\nLogDir: {conf}\nSupportDir: /usr/lib/apt-cacher-ng\n"
        f"Port: {APT_PROXY_PORT}\nBindAddress: {CONTROLLER_IP}\nPidFile: {conf}/pid\n"
        "ExThreshold: 7\nForeGround: 1\nForceManaged: 1\n" + remaps, encoding="utf-8")
    pid = process.spawn(["/usr/sbin/apt-cacher-ng", "-c", str(conf)], state / "apt-cacher-ng.log")
    if not process.wait_for(lambda: port_open(str(CONTROLLER_IP), APT_PROXY_PORT), 15):
        process.terminate(pid)
        raise RuntimeError(f"apt-cacher-ng did not start; see {state / 'apt-cacher-ng.log'}")
    return pid


def start_artifact_server(state: Path) -> int:
    """A static HTTP server for built artifacts, as an operator's offline bundle would serve them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pid = process.spawn([sys.executable, "-m", "http.server", "--bind", str(CONTROLLER_IP),
                         "--directory", str(ARTIFACTS), str(ARTIFACT_PORT)], state / "artifacts-http.log")
    if not process.wait_for(lambda: port_open(str(CONTROLLER_IP), ARTIFACT_PORT), 10):
        process.terminate(pid)
        raise RuntimeError(f"the artifact server did not start; see {state / 'artifacts-http.log'}")
    return pid
