"""Running a benchmark as its smoke run (issue 20 item 5): the bench must finish and print each figure
its smoke test names. Timings are printed for the reader, never checked against a bound."""

import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_bench(name: str, args: list[str], figures: list[str], timeout: float = 900) -> str:
    """Run bench/NAME with ARGS; fail unless it exits 0 and its output matches every pattern."""
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / name), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=timeout,
    )
    print(f"--- bench/{name} {' '.join(args)} ({time.monotonic() - t0:.0f} s)\n{r.stdout}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    missing = [f for f in figures if not re.search(f, r.stdout)]
    assert not missing, (missing, r.stdout[-3000:])
    return r.stdout
