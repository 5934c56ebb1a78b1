"""The two entry points as real processes: app-web (uvicorn workers on loopback) and app-worker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import uvicorn

from app import server
from app.devtools.ports import free_port


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


def test_app_web_listens_without_nagle():
    """Keep-alive answers must not wait on delayed ACKs (~40 ms each): the listening socket, which
    accepted connections inherit, has TCP_NODELAY."""
    sock = server.bind(uvicorn.Config("app.main:create_app", port=free_port()))
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


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
        for _ in range(150):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("app-web did not become ready")
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
