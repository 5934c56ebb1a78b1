"""A private MinIO server on a free loopback port, its data in a temp dir."""

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.ports import free_port


def _binary() -> Path:
    if env := os.environ.get("MINIO_BIN"):
        return Path(env)
    from pbox.artifacts import ensure_minio  # built once with `go install`, then cached

    return ensure_minio()


class MinioServer:
    def __init__(self, base: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pbox-minio-", dir=base))
        self.port = free_port()
        self.access_key = "pbox-test"
        self.secret_key = secrets.token_hex(16)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "MinioServer":
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        log = (self.dir / "log").open("wb")
        self._proc = subprocess.Popen(
            [
                str(_binary()),
                "server",
                str(self.dir / "data"),
                "--address",
                f"127.0.0.1:{self.port}",
                "--console-address",
                f"127.0.0.1:{free_port()}",
                "--quiet",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"minio exited: {(self.dir / 'log').read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("minio did not become ready")

    def pause(self) -> None:
        """End the server as an outage would, keeping its data: `start` brings it back."""
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)

    def stop(self) -> None:
        self.pause()
        shutil.rmtree(self.dir, ignore_errors=True)
