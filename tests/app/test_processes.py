"""The two entry points as real processes: app-web (uvicorn workers on loopback) and app-worker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import sqlalchemy as sa
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from app import server
from app.db.session import Database
from app.runtime import audit_log
from app.security.auditlog import Event
from tests.app.conftest import migrated_database
from tests.support.ports import free_port


def env_for(settings, **extra):
    return {
        **os.environ,
        "PBOX_DATABASE_URL": settings.database_url,
        "PBOX_S3_ENDPOINT": settings.s3_endpoint,
        "PBOX_S3_ACCESS_KEY": settings.s3_access_key,
        "PBOX_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
        "PBOX_SECRET_KEY": settings.secret_key.get_secret_value(),
        "PBOX_FIELD_KEY": settings.field_key.get_secret_value(),
        "PBOX_AUDIT_KEY": settings.audit_key.get_secret_value(),
        **extra,
    }


def test_app_web_listens_without_nagle():
    """Keep-alive answers must not wait on delayed ACKs (~40 ms each): the listening socket, which
    accepted connections inherit, has TCP_NODELAY."""
    sock = server.bind(uvicorn.Config("app.main:create_app", port=free_port()))
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, summed over the labels not given."""
    values = [
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


def wait_ready(base: str) -> None:
    for _ in range(150):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{base} did not become ready")


def test_app_web_serves_with_json_logs(settings):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.server"],
        env=env_for(settings, PBOX_PORT=str(port), PBOX_WORKERS="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        with httpx.Client(base_url=base) as c:
            for i in range(15):
                r = c.get("/healthz", headers={"X-Request-ID": f"proc-test-{i}"})
                assert r.status_code == 200 and r.headers["x-request-id"] == f"proc-test-{i}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "proc-test-3"]
    assert (
        mine and mine[0]["msg"] == "request" and mine[0]["status"] == 200 and mine[0]["route"] == "/healthz"
    )


def test_app_worker_keeps_partitions_ahead_and_stops_on_sigterm(settings):
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.worker"],
        env=env_for(settings, PBOX_WORKER_INTERVAL_SECONDS="3600"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    line = b""
    assert proc.stdout is not None
    while time.monotonic() < deadline and b"partitions ensured" not in line:
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    assert b"partitions ensured" in line, rest
    assert json.loads(line)["partitions_created"] >= 0
    assert proc.returncode == 0


def _ca_and_server_cert(tmp_path):
    """A CA and a server certificate for 127.0.0.1 (what roles/pki makes on a real host)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, key, issuer, issuer_key, ca, sans=None):
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("test CA", ca_key, "test CA", ca_key, True)
    srv = cert("app", key, "test CA", ca_key, False, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    paths = {n: tmp_path / f"{n}.pem" for n in ("ca", "crt", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["crt"].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def test_app_web_serves_https_only_when_given_a_certificate(settings, tmp_path):
    import socket
    import ssl

    tls = _ca_and_server_cert(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.server"],
        env=env_for(settings, PBOX_PORT=str(port), PBOX_WORKERS="1", PBOX_TLS_CERT_FILE=str(tls["crt"]),
                    PBOX_TLS_KEY_FILE=str(tls["key"])),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                r = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=str(tls["ca"]), timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("app-web did not serve HTTPS")
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
        except httpx.HTTPError:
            plain = None
        assert plain is None, "plain HTTP was answered"
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(tls["ca"]))
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                old.wrap_socket(s, server_hostname="127.0.0.1")
                refused = False
            except ssl.SSLError:
                refused = True
        assert refused, "TLS 1.1 was accepted"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_app_web_metrics_count_every_worker_process(settings, tmp_path):
    """With two uvicorn workers, /metrics (answered by either) counts the requests both served."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.server"],
        env=env_for(settings, PBOX_PORT=str(port), PBOX_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        for _ in range(40):  # a new connection each time: both workers take some
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
        assert len(list(tmp_path.glob("histogram_*.db"))) == 2, "both worker processes served requests"
        for _ in range(4):  # whichever worker answers, the sum is the same
            text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text
            assert sample(text, "pbox_http_request_duration_seconds_count", route="/healthz") == 40, text[
                :2000
            ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_app_worker_exports_the_audit_chain_state(pg, settings):
    """app-worker re-verifies the audit chain and exports the result; a tampered row turns it to 0."""
    app_db = migrated_database(pg, "pbox_worker_chain")
    url = app_db.runtime_url  # the worker's role
    db = Database(url, pool_size=1)
    with db.transaction() as s:  # keyed, as the node's app writes it: the boundary row, then two events
        audit_log(settings).record(s, Event("owner", "7", "vehicle_history", "LSVAM4187C2184847"))
        audit_log(settings).record(s, Event("owner", "7", "vehicle_history", "LSVAM4187C2184847"))
    db.dispose()
    port = free_port()
    env = env_for(settings, PBOX_DATABASE_URL=url, PBOX_WORKER_METRICS_PORT=str(port))
    env["PBOX_AUDIT_VERIFY_INTERVAL_SECONDS"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def chain() -> tuple[float | None, float | None]:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None, None
        return sample(text, "pbox_audit_chain_ok"), sample(text, "pbox_audit_chain_rows_verified")

    def wait_chain(expected: tuple[float, float]) -> None:
        deadline = time.monotonic() + 30
        while (got := chain()) != expected:
            assert time.monotonic() < deadline, f"worker metrics {got}, expected {expected}"
            time.sleep(0.2)

    try:
        wait_chain((1, 3))
        tamper = sa.create_engine(app_db.superuser_url)  # past the audit log's triggers
        with tamper.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text("UPDATE audit.event SET actor_id = '8' WHERE seq = 2"))
        tamper.dispose()
        wait_chain((0, 1))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
