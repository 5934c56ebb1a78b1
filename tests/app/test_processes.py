"""The two entry points as real processes: app-web (uvicorn workers on loopback) and app-worker."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.db.session import Database
from app.devtools.ports import free_port
from app.security.auditlog import AuditLog, Event
from tests.app.conftest import migrated_database


def env_for(settings, **extra):
    return {
        **os.environ,
        "PBOX_DATABASE_URL": settings.database_url,
        "PBOX_S3_ENDPOINT": settings.s3_endpoint,
        "PBOX_S3_ACCESS_KEY": settings.s3_access_key,
        "PBOX_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
        "PBOX_SECRET_KEY": settings.secret_key.get_secret_value(),
        "PBOX_FIELD_KEY": settings.field_key.get_secret_value(),
        **extra,
    }


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


def test_app_web_serves_with_json_logs_and_no_nagle_stall(settings):
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
            timings = []
            for i in range(15):
                t = time.perf_counter()
                r = c.get("/healthz", headers={"X-Request-ID": f"proc-test-{i}"})
                timings.append(time.perf_counter() - t)
                assert r.status_code == 200 and r.headers["x-request-id"] == f"proc-test-{i}"
        # keep-alive requests must not wait on delayed ACKs (~40 ms each without TCP_NODELAY)
        assert statistics.median(timings) < 0.02, timings
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
    url = migrated_database(pg, "pbox_worker_chain")
    db = Database(url, pool_size=1)
    with db.transaction() as s:
        AuditLog().record(s, Event("owner", "7", "vehicle_history", "LSVAM4187C2184847"))
        AuditLog().record(s, Event("owner", "7", "vehicle_history", "LSVAM4187C2184847"))
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
        wait_chain((1, 2))
        tamper = sa.create_engine(url)
        with tamper.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text("UPDATE audit.event SET actor_id = '8' WHERE seq = 2"))
        tamper.dispose()
        wait_chain((0, 1))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
