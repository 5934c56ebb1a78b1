"""The national link (profile `national`): a province's gateway and the ministry's, deployed by
site.yml. The tunnel comes up (userspace WireGuard: the lab kernel has none), the ministry's
exchange port answers only through it, handshakes from anyone but the peer are dropped, the
tunnel's state reaches monitoring and follows a cut, and a second deploy changes nothing."""

import re
import socket
import time

import pytest

from pbox.lab import lab
from tests.lab import deploy_checks as checks
from tests.lab.conftest import assert_down_leaves_nothing, bring_up, host_run

MINISTRY_TUNNEL_IP = "10.250.0.1"
EXCHANGE_PORT = 8443
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def national():
    prof, pids = bring_up("national")
    t0 = time.monotonic()
    result, out = checks.run_deploy()
    TIMINGS["fresh"] = time.monotonic() - t0
    yield prof, pids, result, out
    lab.down(lambda _: None)


def tunnel_up(host, peer: str) -> int:
    host_run(host, "sudo", "systemctl", "start", "pbox-vpn-status.service")
    prom = host_run(host, "cat", "/var/lib/prometheus/node-exporter/pbox_vpn.prom")
    m = re.search(rf'^pbox_vpn_tunnel_up{{[^}}]*peer="{peer}"}} (\d)$', prom, re.M)
    assert m, prom
    return int(m.group(1))


def test_deploy_succeeds(national):
    *_, result, out = national
    assert result.ok, checks.problems(out)


def test_tunnel_up_both_ways(national):
    prof, *_ = national
    pgw, mgw = prof.host("pgw1"), prof.host("mgw1")
    # The keepalive makes the first handshake; both ends then report the tunnel up.
    checks.wait_for(lambda: tunnel_up(pgw, "ministry"), 60, "a handshake with the ministry")
    assert tunnel_up(mgw, "320000") == 1
    # Userspace WireGuard where the kernel has none, as wg-quick chose by itself.
    assert "wireguard-go" in host_run(pgw, "sh", "-c", "cat /proc/[0-9]*/comm")


def test_exchange_port_only_through_the_tunnel(national):
    prof, *_ = national
    pgw, mgw = prof.host("pgw1"), prof.host("mgw1")
    probe = ["python3", "-m", "http.server", str(EXCHANGE_PORT)]
    host_run(mgw, "sudo", "systemd-run", "--unit=exchange-probe", *probe)
    try:
        checks.wait_for(lambda: host_run(mgw, "ss", "-Htln", f"sport = :{EXCHANGE_PORT}") != "", 30,
                        "the probe listening")
        via_tunnel = f"http://{MINISTRY_TUNNEL_IP}:{EXCHANGE_PORT}/"
        via_lan = f"http://{mgw.address}:{EXCHANGE_PORT}/"
        status = host_run(pgw, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", via_tunnel)
        assert status == "200"
        assert host_run(pgw, "curl", "-s", "-m", "3", via_lan, check=False) == ""
    finally:
        host_run(mgw, "sudo", "systemctl", "stop", "exchange-probe", check=False)


def counter(host) -> int:
    rules = host_run(host, "sudo", "nft", "list", "chain", "inet", "pbox_vpn", "input")
    m = re.search(r"udp dport 51820 .* counter packets (\d+)", rules)
    assert m, rules
    return int(m.group(1))


def test_handshakes_only_from_the_peer(national):
    prof, *_ = national
    mgw = prof.host("mgw1")
    before = counter(mgw)
    # The controller is on the lab network but is not a peer gateway.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x01" + b"\x00" * 147, (str(mgw.address), 51820))
    checks.wait_for(lambda: counter(mgw) > before, 10, "the stranger's packet dropped")


def test_tunnel_state_follows_a_cut(national):
    prof, *_ = national
    pgw = prof.host("pgw1")
    host_run(pgw, "sudo", "systemctl", "stop", "wg-quick@wg-ministry")
    try:
        assert tunnel_up(pgw, "ministry") == 0
    finally:
        host_run(pgw, "sudo", "systemctl", "start", "wg-quick@wg-ministry")
    checks.wait_for(lambda: tunnel_up(pgw, "ministry"), 60, "the tunnel back up")


def test_second_deploy_changes_nothing(national):
    TIMINGS["rerun"] = checks.assert_idempotent()


def test_down_leaves_nothing(national, clean_controller):
    _, pids, *_ = national
    print(f"\nnational deploy timings: {TIMINGS}")
    assert_down_leaves_nothing(clean_controller, pids)
