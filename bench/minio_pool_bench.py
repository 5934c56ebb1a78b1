"""MinIO pool start-up time on a deployed centralized lab (four hosts, one erasure-coded pool).

Run as root with the lab up and deployed: `PBOX_LAB_SLOT=N .venv/bin/python bench/minio_pool_bench.py`
(`--rounds 1`: the lab lane's smoke run, tests/lab/centralized/test_6_minio_pool_bench.py).
Prints, per round: the whole pool restarted at once until it has write quorum
(`/minio/health/cluster` 200) and until its admin API answers (IAM loaded); beside it the same
run's baseline, one host restarted alone until the pool counts its drive online again.
"""

import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from pbox.lab import lab
from pbox.lab.profile import load_profile
from tests.lab.centralized.test_5_object_storage import _minio_admin

CA = "/var/lib/pbox/pki/centralized/ca.crt"
HOSTS = ["db1", "db2", "app1", "app2"]
ROUNDS = 3
RESTART = shlex.join(["sudo", "systemctl", "restart", "minio"])


def ssh(host, command: str) -> None:
    subprocess.run(lab.ssh_argv(host, command), check=True, capture_output=True, timeout=300)


def until(predicate, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise SystemExit("timed out")
        time.sleep(0.2)
    return time.monotonic() - t0


def main() -> None:
    prof = load_profile("centralized")
    first = prof.host("db1")
    admin = _minio_admin(f"https://{first.address}:9000")

    def quorum() -> bool:
        try:
            return httpx.get(f"https://{first.address}:9000/minio/health/cluster", verify=CA,
                             timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def online() -> int:
        try:
            status, body = admin._request_once("GET", "/minio/admin/v3/info", None, b"", None)
        except OSError:
            return -1
        return json.loads(body)["backend"].get("onlineDisks", 0) if status == 200 else -1

    rounds = int(sys.argv[2]) if sys.argv[1:2] == ["--rounds"] else ROUNDS
    for i in range(rounds):
        t0 = time.monotonic()
        with ThreadPoolExecutor(len(HOSTS)) as ex:
            list(ex.map(lambda n: ssh(prof.host(n), RESTART), HOSTS))
        until(quorum)
        t_quorum = time.monotonic() - t0
        until(lambda: online() == 4)
        t_admin = time.monotonic() - t0
        t1 = time.monotonic()
        ssh(prof.host("app2"), RESTART)
        until(lambda: online() == 4)
        t_one = time.monotonic() - t1
        print(f"round {i + 1}: whole pool restarted → write quorum {t_quorum:5.1f} s, admin API with"
              f" 4 drives online {t_admin:5.1f} s | baseline: one host restarted → back in the pool"
              f" {t_one:5.1f} s", flush=True)


if __name__ == "__main__":
    main()
