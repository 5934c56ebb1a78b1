"""The national lab (profile `national`): the ministry's site and two provinces, each a VPN gateway
and an all-in-one node, deployed by site.yml (host baseline included) once for every test here.

The tunnels come up (userspace WireGuard: the lab kernel has none), handshakes from anyone but a
peer are dropped, each site's exchange endpoint is reached only through the tunnels, the tunnel's
state reaches monitoring, and the host firewall and the tunnel's stand together. Then the exchange
over them: a repair uploaded in province B (浙江) for a car of province A (江苏, 苏A plates) appears
in A's file through the ministry; with A's tunnel cut, B's uploads wait at the ministry and arrive
once the tunnel is back; restarting the relays mid-stream loses nothing; and in the end every
record is at A exactly once, with counts and digests equal on both sides of each link, as the
nodes' own reconciliation reports. A second deploy changes nothing. Last, the gateways switch to
IPsec (strongSwan; in the lab its userspace kernel-libipsec), the exchange takes the new tunnels,
and a second IPsec deploy changes nothing."""

import io
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pyotp
import pytest
from rich.console import Console

from pbox import deploy
from pbox.exchange import login
from pbox.lab import lab
from tests.lab import deploy_checks as checks
from tests.lab.conftest import assert_down_leaves_nothing, bring_up, host_run
from tests.support.samples import make_enterprise, make_record, make_vin

MINISTRY_TUNNEL_IP = "10.250.0.1"
EXCHANGE_PORT = 8443
MINISTRY, PROV_A, PROV_B = "ministry-100000", "province-320000", "province-330000"
TIMINGS: dict[str, float] = {}
ARRIVAL_TIMEOUT = 180


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


def psql(host, sql: str) -> list[list[str]]:
    out = host_run(host, "sudo", "-u", "postgres", "psql", "-d", "pbox", "-XAtF", "\t", "-c", sql)
    return [line.split("\t") for line in out.splitlines() if line]


class Shop:
    """A repair shop of province B uploading over HTTPS to B's node, as its software does."""

    def __init__(self, node, region_code: str) -> None:
        self.client = httpx.Client(base_url=f"https://{node.address}:8000", timeout=60,
                                   verify=ssl.create_default_context(cafile=str(checks.ca_file("national"))))
        self.profile = {**make_enterprise(name="杭州示例汽车维修有限公司"), "region_code": region_code}
        self.uscc = self.profile["uscc"]
        assert re.fullmatch(r"[0-9A-Z]{18}", self.uscc)
        checks.licence(node, self.profile)  # on the node's licence roster: approved at registration
        r = self.client.post("/api/v1/collection/enterprises", json=self.profile)
        assert r.status_code == 201 and r.json()["status"] == "active", r.text
        cred = r.json()
        r = self.client.post("/api/v1/collection/token",
                             json={"key_id": cred["key_id"], "secret": cred["secret"]})
        assert r.status_code == 200, r.text
        self.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        self.uploaded: list[str] = []

    def upload(self, plate: str) -> str:
        no = "LAB-" + uuid.uuid4().hex[:12].upper()
        r = self.client.post("/api/v1/collection/records", json=make_record(no, make_vin(), plate=plate))
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        self.uploaded.append(no)
        return no


def versions(host, uscc: str, settlement_no: str | None = None) -> list[tuple[str, ...]]:
    """(settlement_no, version, digest) of every stored version, duplicates included."""
    where = f"e.uscc = '{uscc}'" + (f" AND v.settlement_no = '{settlement_no}'" if settlement_no else "")
    rows = psql(host, "SELECT v.settlement_no, v.version, v.digest FROM record_version v"
                      f" JOIN enterprise e ON e.id = v.enterprise_id WHERE {where} ORDER BY 1, 2, 3")
    return [tuple(r) for r in rows]


def of_a(host, shop: Shop) -> list[tuple[str, ...]]:
    """The versions of the shop's records of province A's cars (its own cars' stay in B)."""
    return [r for r in versions(host, shop.uscc) if r[0] in shop.uploaded]


def all_arrived(host, shop: Shop) -> list[tuple[str, ...]]:
    rows = of_a(host, shop)
    return rows if {r[0] for r in rows} >= set(shop.uploaded) else []


def backlog(host, peer: str) -> int:
    """Messages for `peer` after its cursor, as the admin API counts them."""
    rows = psql(host, "SELECT count(*) FROM exchange_outbox o JOIN exchange_cursor c ON c.peer = o.peer"
                      f" WHERE o.peer = '{peer}' AND o.status = 'pending' AND (o.xid, o.id) > (c.xid, c.id)")
    return int(rows[0][0])


@pytest.fixture(scope="module")
def nodes(national):
    prof, *_ = national
    return {name: prof.host(name) for name in ("mgw1", "mnode1", "pgw1", "pnode1", "qgw1", "qnode1")}


@pytest.fixture(scope="module")
def shop(national, nodes):
    s = Shop(nodes["qnode1"], "330100")  # a Hangzhou shop, on province B's system
    yield s
    s.client.close()


def test_deploy_succeeds(national):
    *_, result, out = national
    assert result.ok, checks.problems(out)


def test_tunnels_up_both_ways(nodes):
    # The keepalive makes the first handshake; both ends then report the tunnel up.
    for gw in ("pgw1", "qgw1"):
        checks.wait_for(lambda gw=gw: tunnel_up(nodes[gw], "ministry"), 60,
                        f"{gw}'s handshake with the ministry")
    assert tunnel_up(nodes["mgw1"], "320000") == 1
    assert tunnel_up(nodes["mgw1"], "330000") == 1
    # Userspace WireGuard where the kernel has none, as wg-quick chose by itself.
    assert "wireguard-go" in host_run(nodes["pgw1"], "sh", "-c", "cat /proc/[0-9]*/comm")


def test_exchange_endpoints_only_through_the_tunnel(nodes):
    ca = "/etc/pbox/pki/ca.crt"
    # A province node reaches the ministry's node at the ministry gateway's tunnel address, by the
    # route through its own gateway, and the certificate it is shown names that address.
    for node in ("pnode1", "qnode1"):
        status = host_run(nodes[node], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10",
                          "--cacert", ca, f"https://{MINISTRY_TUNNEL_IP}:{EXCHANGE_PORT}/readyz")
        assert status == "200", node
    # ... and the ministry reaches each province the same way.
    for ip in ("10.250.0.2", "10.250.0.3"):
        status = host_run(nodes["mnode1"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10",
                          "--cacert", ca, f"https://{ip}:{EXCHANGE_PORT}/readyz")
        assert status == "200", ip
    # The exchange port of the ministry's gateway from the LAN, around the tunnel: nothing.
    assert host_run(nodes["pnode1"], "curl", "-sk", "-m", "3", f"https://{nodes['mgw1'].address}:{EXCHANGE_PORT}/",
                    check=False) == ""
    # Province A cannot reach province B directly: its tunnel carries only the ministry's address.
    assert host_run(nodes["pnode1"], "curl", "-sk", "-m", "3", f"https://10.250.0.3:{EXCHANGE_PORT}/readyz",
                    check=False) == ""


def counter(host) -> int:
    rules = host_run(host, "sudo", "nft", "list", "chain", "inet", "pbox_vpn", "input")
    m = re.search(r"udp dport 51820 .* counter packets (\d+)", rules)
    assert m, rules
    return int(m.group(1))


def test_handshakes_only_from_the_peer(nodes):
    mgw = nodes["mgw1"]
    before = counter(mgw)
    # The controller is on the lab network but is not a peer gateway.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x01" + b"\x00" * 147, (str(mgw.address), 51820))
    checks.wait_for(lambda: counter(mgw) > before, 10, "the stranger's packet dropped")


def test_host_baseline_and_tunnel_firewall_together(nodes):
    """The hardening role's table and the VPN's both stand on the gateways (each replaces only its
    own, so reloading the host firewall keeps the tunnel's); only gateways forward; a node's port
    outside the catalog is closed to the other sites."""
    for gw in ("mgw1", "pgw1", "qgw1"):
        host_run(nodes[gw], "sudo", "systemctl", "reload", "nftables")
        tables = host_run(nodes[gw], "sudo", "nft", "list", "tables")
        assert "table inet pbox_filter" in tables and "table inet pbox_vpn" in tables, (gw, tables)
        assert host_run(nodes[gw], "cat", "/proc/sys/net/ipv4/ip_forward") == "1", gw
    for node in ("mnode1", "pnode1", "qnode1"):
        assert host_run(nodes[node], "cat", "/proc/sys/net/ipv4/ip_forward") == "0", node
        chain = host_run(nodes[node], "sudo", "nft", "list", "chain", "inet", "pbox_filter", "input")
        assert "policy drop" in chain, (node, chain)
    # PostgreSQL of province B, from province A's node: dropped by B's host firewall.
    probe = host_run(nodes["pnode1"], "timeout", "3", "bash", "-c",
                     f"exec 3<>/dev/tcp/{nodes['qnode1'].address}/5432 && echo open", check=False)
    assert probe != "open"


def test_a_repair_in_province_b_appears_in_province_a_through_the_ministry(nodes, shop):
    t0 = time.monotonic()
    no = shop.upload("苏A5B678")  # a Nanjing car, repaired in Hangzhou
    origin = versions(nodes["qnode1"], shop.uscc, no)
    assert checks.wait_for(lambda: versions(nodes["mnode1"], shop.uscc, no), ARRIVAL_TIMEOUT,
                           "the record at the ministry") == origin
    assert checks.wait_for(lambda: versions(nodes["pnode1"], shop.uscc, no), ARRIVAL_TIMEOUT,
                           "the record at province A") == origin
    TIMINGS["b_to_a"] = time.monotonic() - t0
    # In A's file of the car as a live record received by exchange, uploaded in B.
    rows = psql(nodes["pnode1"], "SELECT r.status, v.source, v.origin_region FROM repair_record r"
                                 " JOIN record_version v"
                                 " ON v.record_id = r.id AND v.version = r.current_version"
                                 f" WHERE r.settlement_no = '{no}'")
    assert rows == [["active", "exchange", "330000"]]
    # A Hangzhou car repaired in Hangzhou goes to the ministry only, not to A.
    local = shop.upload("浙A12345")
    checks.wait_for(lambda: versions(nodes["mnode1"], shop.uscc, local), ARRIVAL_TIMEOUT, "the local record")
    assert psql(nodes["mnode1"], "SELECT DISTINCT peer FROM exchange_outbox"
                                 f" WHERE msg_key LIKE '{shop.uscc}/{local}/%'") == []
    shop.uploaded.remove(local)


def test_uploads_during_a_cut_tunnel_arrive_once_it_is_back(nodes, shop):
    pgw = nodes["pgw1"]
    host_run(pgw, "sudo", "systemctl", "stop", "wg-quick@wg-ministry")
    try:
        assert tunnel_up(pgw, "ministry") == 0
        during = [shop.upload("苏A" + f"C{i:04d}") for i in range(5)]
        # They reach the ministry (B's tunnel is up) and wait there for A.
        for no in during:
            checks.wait_for(lambda no=no: versions(nodes["mnode1"], shop.uscc, no), ARRIVAL_TIMEOUT,
                            f"{no} at the ministry")
        assert all(versions(nodes["pnode1"], shop.uscc, no) == [] for no in during)
        assert backlog(nodes["mnode1"], PROV_A) >= len(during)
    finally:
        host_run(pgw, "sudo", "systemctl", "start", "wg-quick@wg-ministry")
    t0 = time.monotonic()
    checks.wait_for(lambda: tunnel_up(pgw, "ministry"), 60, "the tunnel back up")
    checks.wait_for(lambda: all_arrived(nodes["pnode1"], shop), ARRIVAL_TIMEOUT, "the backlog at province A")
    TIMINGS["catch_up_after_cut"] = time.monotonic() - t0
    assert of_a(nodes["pnode1"], shop) == of_a(nodes["qnode1"], shop)


def test_relays_restarted_mid_stream_lose_nothing(nodes, shop):
    """Uploads keep coming while B's relay is restarted, the ministry's is killed, and then the
    receiving app-web of the ministry and of A are killed (systemd restarts them): before, between
    and after, at least 10 uploads each."""
    stop = threading.Event()
    errors: list[BaseException] = []
    first = len(shop.uploaded)

    def stream() -> None:
        try:
            while not stop.is_set() and len(shop.uploaded) < first + 1000:
                shop.upload("苏A" + f"R{len(shop.uploaded):04d}")
        except BaseException as e:  # reported by the test below
            errors.append(e)

    def uploads_after(n: int) -> bool:
        assert not errors, errors
        return len(shop.uploaded) >= n + 10

    t = threading.Thread(target=stream)
    t.start()
    try:
        checks.wait_for(lambda: uploads_after(first), 120, "the stream under way")
        host_run(nodes["qnode1"], "sudo", "systemctl", "restart", "app-worker")
        n = len(shop.uploaded)
        checks.wait_for(lambda: uploads_after(n), 120, "uploads after B's relay restarted")
        host_run(nodes["mnode1"], "sudo", "systemctl", "kill", "--signal=SIGKILL", "app-worker")
        n = len(shop.uploaded)
        checks.wait_for(lambda: uploads_after(n), 120, "uploads after the ministry's relay was killed")
        # The receiving nodes killed mid-stream: the ministry's (receiving B's) and A's app-web.
        for receiver in ("mnode1", "pnode1"):
            host_run(nodes[receiver], "sudo", "systemctl", "kill", "--signal=SIGKILL", "app-web")
            n = len(shop.uploaded)
            checks.wait_for(lambda n=n: uploads_after(n), 120, f"uploads after {receiver}'s app-web died")
    finally:
        stop.set()
        t.join(timeout=120)
    assert not errors, errors
    for node, unit in (("mnode1", "app-worker"), ("mnode1", "app-web"), ("pnode1", "app-web")):
        checks.wait_for(lambda node=node, unit=unit: host_run(nodes[node], "systemctl", "is-active", unit,
                                                              check=False) == "active", 60,
                        f"{node}'s {unit} restarted by systemd")
    TIMINGS["stream_uploads"] = len(shop.uploaded) - first
    checks.wait_for(lambda: all_arrived(nodes["pnode1"], shop), ARRIVAL_TIMEOUT, "the stream at province A")
    assert of_a(nodes["pnode1"], shop) == of_a(nodes["qnode1"], shop)


def test_duplicate_and_late_deliveries_apply_nothing_twice(nodes, shop):
    """B's cursor for the ministry rewound to the start: B ships every message again, old ones after
    newer ones were applied (and new uploads among them). The ministry acknowledges them all and
    applies nothing twice; nothing new goes on to A."""
    at_ministry, at_a = of_a(nodes["mnode1"], shop), of_a(nodes["pnode1"], shop)
    last = psql(nodes["qnode1"], f"SELECT xid::text, id FROM exchange_outbox WHERE peer = '{MINISTRY}'"
                                 " ORDER BY xid DESC, id DESC LIMIT 1")[0]
    psql(nodes["qnode1"], f"UPDATE exchange_cursor SET xid = '0', id = 0 WHERE peer = '{MINISTRY}'")
    fresh = [shop.upload("苏A" + f"D{i:04d}") for i in range(3)]

    def resent() -> bool:
        cursor = psql(nodes["qnode1"], f"SELECT xid::text, id FROM exchange_cursor WHERE peer = '{MINISTRY}'")
        cursor = cursor[0]
        return (int(cursor[0]), int(cursor[1])) >= (int(last[0]), int(last[1]))

    checks.wait_for(resent, ARRIVAL_TIMEOUT, "B's outbox shipped to the ministry again, acknowledged")
    checks.wait_for(lambda: all_arrived(nodes["pnode1"], shop), ARRIVAL_TIMEOUT, "the new uploads at A")
    fresh_versions = [v for v in of_a(nodes["qnode1"], shop) if v[0] in fresh]
    # Compared as sorted lists: a version applied twice would be a second row.
    assert sorted(of_a(nodes["mnode1"], shop)) == sorted(at_ministry + fresh_versions)
    assert sorted(of_a(nodes["pnode1"], shop)) == sorted(at_a + fresh_versions)


def reconciled(host, peer: str, since: str) -> list[list[str]]:
    rows = psql(host, "SELECT their_count, our_count, their_digest = our_digest, status"
                      f" FROM exchange_reconcile WHERE peer = '{peer}' AND origin_region = '330000'"
                      f" AND checked_at > '{since}'")
    return rows if rows and all(r[3] == "ok" for r in rows) else []


def test_every_record_exactly_once_and_reconciled(nodes, shop):
    origin = of_a(nodes["qnode1"], shop)
    assert len(origin) == len(shop.uploaded) > 36
    # Every record version once at the ministry and at A (a duplicate would be a second row).
    assert of_a(nodes["mnode1"], shop) == origin
    assert versions(nodes["pnode1"], shop.uscc) == origin
    for node in ("mnode1", "pnode1"):
        assert psql(nodes[node], "SELECT record_id, version FROM record_version GROUP BY 1, 2"
                                 " HAVING count(*) > 1") == [], node
        dead = psql(nodes[node], "SELECT count(*) FROM exchange_outbox WHERE status = 'dead'")
        assert dead == [["0"]], node
    # The nodes' own reconciliation (every minute in the lab): A against the ministry, the
    # ministry against B, for B's records: counts and digests equal.
    for node, peer in (("pnode1", MINISTRY), ("mnode1", PROV_B)):
        since = psql(nodes[node], "SELECT now()")[0][0]
        rows = checks.wait_for(lambda node=node, peer=peer, since=since: reconciled(nodes[node], peer, since),
                               180, f"{node} reconciled with {peer}")
        assert all(r[0] == r[1] and r[2] == "t" for r in rows), rows


def test_operator_reconciles_with_pbox(nodes):
    """The operator's path: the first system administrator made at install with pbox-admin on A's
    node, then `pbox exchange reconcile --run` from the management network: every day and origin
    in agreement with the ministry."""
    password = "Lab-Install-" + uuid.uuid4().hex[:8]
    out = host_run(nodes["pnode1"], "sudo", "sh", "-c", f"printf '%s\\n' '{password}' | pbox-admin bootstrap"
                   " --role system_admin --username ops-lab --password-stdin")
    secret = re.search(r"^TOTP secret: (\S+)$", out, re.M)
    assert secret, out
    url, ca = f"https://{nodes['pnode1'].address}:8000", checks.ca_file("national")
    token = login(url, "ops-lab", password, pyotp.TOTP(secret.group(1)).now(), ca)
    r = subprocess.run([str(Path(sys.executable).parent / "pbox"), "exchange", "reconcile", "--url", url,
                        "--cacert", str(ca), "--run"], env={**os.environ, "PBOX_STAFF_TOKEN": token,
                                                            "COLUMNS": "200"},
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert MINISTRY in r.stdout and ", 0 not in agreement" in r.stdout, r.stdout


def test_second_deploy_changes_nothing(national):
    TIMINGS["rerun"] = checks.assert_idempotent()


def deploy_gateways(vpn_type: str) -> tuple[deploy.DeployResult, str]:
    buf = io.StringIO()
    result = deploy.run(None, limit="vpn_gateway", extravars={"vpn_type": vpn_type},
                        out=Console(file=buf, width=200))
    return result, buf.getvalue()


def test_ipsec_instead_of_wireguard(nodes, shop):
    """The gateways switched to IPsec (strongSwan; in the lab its userspace kernel-libipsec, ESP
    in UDP): the tunnels come up, WireGuard is gone, and the exchange takes the new tunnels."""
    t0 = time.monotonic()
    result, out = deploy_gateways("ipsec")
    assert result.ok, checks.problems(out)
    TIMINGS["switch_to_ipsec"] = time.monotonic() - t0
    for gw in ("pgw1", "qgw1"):
        checks.wait_for(lambda gw=gw: tunnel_up(nodes[gw], "ministry"), 60,
                        f"{gw}'s IPsec SA with the ministry")
    assert tunnel_up(nodes["mgw1"], "320000") == tunnel_up(nodes["mgw1"], "330000") == 1
    sas = host_run(nodes["mgw1"], "sudo", "swanctl", "--list-sas")
    assert sas.count("ESTABLISHED") == 2 and "TUNNEL-in-UDP" in sas, sas
    for gw in ("pgw1", "qgw1", "mgw1"):
        assert host_run(nodes[gw], "ip", "-o", "link", "show", "ipsec0")  # kernel-libipsec's TUN device
        assert host_run(nodes[gw], "systemctl", "is-active", "wg-quick@" + ("wg-provinces" if gw == "mgw1"
                        else "wg-ministry"), check=False) != "active"
        assert "wireguard-go" not in host_run(nodes[gw], "sh", "-c", "cat /proc/[0-9]*/comm")
    # Only through the tunnel still; and a repair in B reaches A over IPsec.
    status = host_run(nodes["pnode1"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10",
                      "--cacert", "/etc/pbox/pki/ca.crt", f"https://{MINISTRY_TUNNEL_IP}:{EXCHANGE_PORT}/readyz")
    assert status == "200"
    assert host_run(nodes["pnode1"], "curl", "-sk", "-m", "3", f"https://{nodes['mgw1'].address}:{EXCHANGE_PORT}/",
                    check=False) == ""
    no = shop.upload("苏A9D001")
    t0 = time.monotonic()
    checks.wait_for(lambda: versions(nodes["pnode1"], shop.uscc, no), ARRIVAL_TIMEOUT,
                    "the record at A over IPsec")
    TIMINGS["b_to_a_ipsec"] = time.monotonic() - t0
    assert of_a(nodes["pnode1"], shop) == of_a(nodes["qnode1"], shop)


def test_ipsec_second_deploy_changes_nothing(national):
    result, out = deploy_gateways("ipsec")
    assert result.ok, checks.problems(out)
    changed = {h: n for h, n in result.stats.get("changed", {}).items() if n}
    assert not changed, f"second IPsec deploy changed something: {changed}\n{out[-5000:]}"


def test_down_leaves_nothing(national, clean_controller):
    _, pids, *_ = national
    print(f"\nnational lab timings: {TIMINGS}")
    assert_down_leaves_nothing(clean_controller, pids)
