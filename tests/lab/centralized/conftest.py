"""One centralized (集中式) deployment shared by every test module in this package.

The lab comes up and `pbox deploy` runs once, before the first test; the modules run in file-name
order (`test_1_site` … `test_9_convergence`), and after the last one the lab goes down and the
controller must hold nothing of it.
"""

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbox.lab.profile import Profile
from pbox.paths import REPO
from tests.lab.conftest import assert_down_leaves_nothing, bring_up

BIN = Path(sys.executable).parent
PROFILE = "centralized"


@dataclass
class Deployed:
    prof: Profile
    pids: list[int]
    deploy: subprocess.CompletedProcess[str]
    timings: dict[str, float]


@pytest.fixture(scope="package")
def centralized(clean_controller):
    prof, pids = bring_up(PROFILE)
    t0 = time.monotonic()
    r = subprocess.run([str(BIN / "pbox"), "deploy"], capture_output=True, text=True, cwd=REPO, check=False)
    d = Deployed(prof, pids, r, {"fresh": time.monotonic() - t0})
    yield d
    print(f"\ncentralized deploy timings: {d.timings}")
    assert_down_leaves_nothing(clean_controller, pids)
