"""Deploy timings per profile: fresh `pbox deploy` into a new lab, the idempotent re-run, hosts.

Run as root: `.venv/bin/python bench/deploy_bench.py [PROFILE ...]` (default: centralized,
distributed, hybrid). Each profile gets its own lab, taken down afterwards. The baseline printed
beside the figures is the same run's `lab up` time, so slow machines are visible as such; the
time per play and the slowest tasks of each deploy say where its time goes.

`--smoke` times only the idempotent re-run of the deployment already in this slot's lab
(`PBOX_LAB_SLOT`), beside one `ping` of every host as its baseline; it brings nothing up or down.
The centralized lab lane runs it after its own convergence test, so the bench cannot rot.
"""

import argparse
import io
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from pbox import deploy
from pbox.lab import lab
from pbox.paths import LAB_INVENTORY, REPO

PROFILES = ["centralized", "distributed", "hybrid"]
deploy.SLOWEST = 12  # more than the CLI's summary: the bench is for finding where the time goes


def where_the_time_went(label: str, result: deploy.DeployResult) -> None:
    print(f"  {label} time per play: " + ", ".join(f"{n} {s:.1f}s" for n, s in result.plays))
    print(f"  {label} slowest tasks: " + ", ".join(f"{n} {s:.1f}s" for n, s in result.slowest), flush=True)


def ping_round() -> float:
    """One `ping` module call on every host: the round trip every task pays at least once."""
    t0 = time.monotonic()
    argv = [str(Path(sys.executable).parent / "ansible"), "-i", str(LAB_INVENTORY / "hosts.yml"), "all",
            "-m", "ansible.builtin.ping"]
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True, timeout=300)
    return time.monotonic() - t0


def smoke() -> bool:
    """The idempotent re-run of the lab's deployment, beside a ping round."""
    base = ping_round()
    rerun = deploy.run(None, out=Console(file=io.StringIO()))
    print(f"smoke: hosts {len(rerun.hosts())}  ping round {base:5.1f} s  re-run {rerun.elapsed:6.1f} s"
          f" ({'ok' if rerun.ok else 'FAILED'}, changed {rerun.count('changed')})", flush=True)
    where_the_time_went("re-run", rerun)
    for line in rerun.failures:
        print(f"  failed: {line}")
    return rerun.ok


def full(profiles: list[str]) -> bool:
    lab.check_prerequisites()
    ok = True
    for name in profiles:
        lab.down(lambda _: None)
        t0 = time.monotonic()
        prof = lab.up(name, lambda _: None)
        t_up = time.monotonic() - t0
        fresh = deploy.run(None, out=Console(file=io.StringIO()))
        rerun = deploy.run(None, out=Console(file=io.StringIO())) if fresh.ok else None
        lab.down(lambda _: None)
        print(f"{name:<12} hosts {len(prof.hosts)}  lab up {t_up:6.1f} s  fresh deploy {fresh.elapsed:7.1f} s"
              f" ({'ok' if fresh.ok else 'FAILED'})  re-run {rerun.elapsed if rerun else float('nan'):7.1f} s"
              f" (changed {rerun.count('changed') if rerun else '-'})", flush=True)
        for label, result in (("fresh", fresh), ("re-run", rerun)):
            if result is not None:
                where_the_time_went(label, result)
                for line in result.failures:
                    print(f"  {label} failed: {line}")
        ok = ok and fresh.ok and rerun is not None and rerun.ok
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="*", default=PROFILES)
    parser.add_argument("--smoke", action="store_true",
                        help="time only the re-run of this slot's deployed lab")
    args = parser.parse_args()
    if not (smoke() if args.smoke else full(args.profiles)):
        sys.exit(1)


if __name__ == "__main__":
    main()
