"""Lab timings: base image from scratch (cold), 4 hosts up from the cached image, and `down`.

Run as root: `make bench-lab` (or `.venv/bin/python bench/lab_bench.py`). The cold build goes to a
throwaway cache directory, so the real cache is neither used nor disturbed; the 4-host lab is the
`labcheck` profile (3 containers and 1 KVM guest).

`--smoke` (the lab lane's run, tests/lab/test_lab_hosts.py, on the `labcheck` lab that module has
up): no cold build (minutes of debootstrap; a CI run cannot afford it, the full run measures it), the
cached image checked, `lab up` of the running lab timed (the idempotent path) and nothing taken
down — the module's fixture does that.
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbox.lab import lab
from pbox.lab.image import ensure_base_image
from pbox.lab.profile import load_profile

PROFILE = "labcheck"


def timed(label: str, fn):
    t0 = time.monotonic()
    result = fn()
    elapsed = time.monotonic() - t0
    print(f"{label:<48} {elapsed:8.1f} s", flush=True)
    return result, elapsed


def smoke() -> None:
    timed("base image, cached (checked only)", ensure_base_image)
    hosts = load_profile(PROFILE).hosts
    label = f"lab up of the running {len(hosts)} hosts (no-op)"
    _, t_again = timed(label, lambda: lab.up(PROFILE, lambda _: None))
    print(f"idempotent up {t_again:.1f} s ({t_again / len(hosts):.1f} s per host)")


def main() -> None:
    lab.check_prerequisites()
    if sys.argv[1:] == ["--smoke"]:
        smoke()
        return
    lab.down(lambda _: None)
    with tempfile.TemporaryDirectory(prefix="pbox-bench-", dir="/var/tmp") as cold:
        timed("base image, cold (debootstrap + configure)", lambda: ensure_base_image(cache=Path(cold)))
    ensure_base_image()  # the real cache, for the next steps
    hosts = load_profile(PROFILE).hosts
    kinds = ", ".join(sorted({h.kind for h in hosts}))
    _, t_up = timed(f"lab up: {len(hosts)} hosts ({kinds}) from cache, to SSH",
                    lambda: lab.up(PROFILE, lambda _: None))
    _, t_again = timed("lab up again (all running: no-op)", lambda: lab.up(PROFILE, lambda _: None))
    _, t_down = timed("lab down (everything removed)", lambda: lab.down(lambda _: None))
    print(f"per host: up {t_up / len(hosts):.1f} s, down {t_down / len(hosts):.1f} s; "
          f"idempotent up {t_again:.1f} s")


if __name__ == "__main__":
    main()
