"""Deploy timings per profile: fresh `pbox deploy` into a new lab, the idempotent re-run, hosts.

Run as root: `.venv/bin/python bench/deploy_bench.py [PROFILE ...]` (default: centralized,
distributed, hybrid). Each profile gets its own lab, taken down afterwards. The baseline printed
beside the figures is the same run's `lab up` time, so slow machines are visible as such; the
slowest tasks of each deploy say where its time goes.
"""

import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from pbox import deploy
from pbox.lab import lab

PROFILES = ["centralized", "distributed", "hybrid"]


def main() -> None:
    profiles = sys.argv[1:] or PROFILES
    lab.check_prerequisites()
    rows = []
    for name in profiles:
        lab.down(lambda _: None)
        t0 = time.monotonic()
        prof = lab.up(name, lambda _: None)
        t_up = time.monotonic() - t0
        fresh = deploy.run(None, out=Console(file=io.StringIO()))
        rerun = deploy.run(None, out=Console(file=io.StringIO())) if fresh.ok else None
        lab.down(lambda _: None)
        rows.append((name, len(prof.hosts), t_up, fresh, rerun))
        print(f"{name:<12} hosts {len(prof.hosts)}  lab up {t_up:6.1f} s  fresh deploy {fresh.elapsed:7.1f} s"
              f" ({'ok' if fresh.ok else 'FAILED'})  re-run {rerun.elapsed if rerun else float('nan'):7.1f} s"
              f" (changed {rerun.count('changed') if rerun else '-'})", flush=True)
        for label, result in (("fresh", fresh), ("re-run", rerun)):
            if result is not None:
                print(f"  {label} slowest tasks: " + ", ".join(f"{n} {s:.1f}s" for n, s in result.slowest))
    if not all(r[3].ok and r[4] and r[4].ok for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
