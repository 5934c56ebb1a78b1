"""The centralized profile in the lab: every host up, Ansible reaches them all, site.yml runs."""

import subprocess
import sys
from pathlib import Path

import pytest

from pbox.lab import lab
from pbox.paths import REPO
from tests.lab.conftest import assert_down_leaves_nothing, bring_up

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def centralized():
    prof, pids = bring_up("centralized")
    yield prof, pids
    lab.down(lambda _: None)


def test_ansible_ping_every_host(centralized):
    prof, _ = centralized
    inv = lab.LAB_INVENTORY / "hosts.yml"
    r = subprocess.run([str(BIN / "ansible"), "-i", str(inv), "all", "-m", "ping"],
                       capture_output=True, text=True, cwd=REPO, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(prof.hosts)


def test_pbox_deploy_runs_site_yml(centralized):
    r = subprocess.run([str(BIN / "pbox"), "deploy"], capture_output=True, text=True, cwd=REPO, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deploy succeeded" in r.stdout
    assert "deploy summary" in r.stdout


def test_down_leaves_nothing(centralized, clean_controller):
    _, pids = centralized
    assert_down_leaves_nothing(clean_controller, pids)
