"""The CLI's contract: complete help everywhere, one-line errors and non-zero exits, no tracebacks."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

PBOX = str(Path(sys.executable).parent / "pbox")
COMMANDS = [[], ["lab"], ["lab", "up"], ["lab", "down"], ["lab", "status"], ["lab", "ssh"], ["deploy"],
            ["profiles"], ["init"], ["inventory"], ["inventory", "check"], ["audit"], ["audit", "verify-log"],
            ["drill"], ["import"]]


def pbox(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PBOX, *args], capture_output=True, text=True, check=False, env=env, timeout=60)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "pbox")
def test_every_command_has_help(cmd):
    r = pbox(*cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout
    # Every option and sub-command carries a description.
    assert "Show this message" in r.stdout


@pytest.mark.parametrize("args", [
    ["--bogus"], ["lab", "frobnicate"], ["lab", "ssh"], ["lab", "up", "--profile"],
    ["lab", "up", "--profile", "no-such-profile"], ["deploy", "--limit"], ["drill", "--repo", "3"]])
def test_bad_arguments_one_line_error(args):
    r = pbox(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr


def test_deploy_without_lab_inventory_is_a_clear_error(tmp_path):
    r = pbox("deploy", "-i", str(tmp_path / "missing.yml"))
    assert r.returncode == 2
    assert "inventory not found" in r.stderr and "Traceback" not in r.stderr


def test_unknown_playbook_is_a_clear_error(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: {}\n")
    r = pbox("deploy", "-i", str(inv), "--playbook", "nope.yml")
    assert r.returncode == 2 and "no playbook 'nope.yml'" in r.stderr


def test_profiles_lists_the_modes():
    r = pbox("profiles")
    assert r.returncode == 0
    assert "centralized" in r.stdout.split()


def test_a_playbook_that_does_not_load_says_why(tmp_path, monkeypatch):
    """ansible stops before any host runs: the summary carries ansible's own error message."""
    from rich.console import Console

    from pbox import deploy

    book = tmp_path / "broken.yml"
    book.write_text("- hosts: all\n  tasks: [\n")
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: {hosts: {localhost: {ansible_connection: local}}}\n")
    monkeypatch.setattr(deploy, "PLAYBOOKS", tmp_path)
    console = Console(record=True, width=200)
    result = deploy.run(inv, playbook="broken.yml", out=console)
    deploy.print_summary(result, console)
    assert not result.ok
    assert "broken.yml" in result.error and "deploy failed" in console.export_text()


def test_an_inventory_that_does_not_parse_says_where(tmp_path):
    """A YAML error in the operator's group_vars: the summary quotes ansible's message, plainly."""
    from rich.console import Console

    from pbox import deploy

    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("pbox_region_code: [320000\nother: 1\n")
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: {hosts: {localhost: {ansible_connection: local}}}\n")
    console = Console(record=True, width=200)
    result = deploy.run(inv, playbook="preflight.yml", out=console)
    deploy.print_summary(result, console)
    text = console.export_text()
    assert not result.ok
    assert "YAML parsing failed" in result.error and "\x1b[" not in result.error
    assert "YAML parsing failed" in text and "[red]" not in text and "deploy failed" in text


def test_the_summary_names_the_slowest_tasks(monkeypatch):
    """A step's time runs from its start event to the next step's (a play's start counts as a step:
    its fact gathering); the summary names the slowest steps."""
    from rich.console import Console

    from pbox import deploy

    clock = iter([0.0, 1.0, 1.5])
    monkeypatch.setattr(deploy.time, "monotonic", lambda: next(clock))
    starts: list[tuple[str, float]] = []
    on_event = deploy._printer(Console(file=io.StringIO()), task_starts=starts)
    on_event({"event": "playbook_on_play_start", "event_data": {"play": "Database"}})
    on_event({"event": "playbook_on_task_start", "event_data": {"task": "quick"}})
    on_event({"event": "playbook_on_handler_task_start", "event_data": {"task": "Restart postgresql"}})
    steps = deploy.durations(starts, 10.0)
    assert steps == [("Database (start)", 1.0), ("quick", 0.5), ("Restart postgresql", 8.5)]

    slowest = tuple(sorted(steps, key=lambda step: -step[1]))
    result = deploy.DeployResult("successful", 0, {"ok": {"db1": 3}}, 10.0, slowest=slowest)
    console = Console(record=True, width=200)
    deploy.print_summary(result, console)
    text = console.export_text()
    assert "slowest tasks: Restart postgresql 8.5s, Database (start) 1.0s, quick 0.5s" in text


def test_audit_without_inventory_is_a_clear_error(tmp_path):
    r = pbox("audit", "-i", str(tmp_path / "missing.yml"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.startswith("error: inventory not found") and "Traceback" not in r.stderr


def test_deploy_tags_run_only_those_parts(tmp_path, monkeypatch):
    """`pbox deploy --tags configure` passes the tags to ansible: untagged and other parts do not run."""
    from rich.console import Console

    from pbox import deploy

    book = tmp_path / "parts.yml"
    book.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - {name: install part, ansible.builtin.debug: {msg: i}, tags: [install]}\n"
                    "    - {name: configure part, ansible.builtin.debug: {msg: c}, tags: [configure]}\n"
                    "    - {name: untagged, ansible.builtin.debug: {msg: u}}\n")
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: {hosts: {localhost: {ansible_connection: local}}}\n")
    monkeypatch.setattr(deploy, "PLAYBOOKS", tmp_path)
    console = Console(record=True, width=200)
    result = deploy.run(inv, playbook="parts.yml", out=console, tags="configure")
    text = console.export_text()
    assert result.ok, text
    assert "configure part" in text and "install part" not in text and "untagged" not in text
    assert "--tags" in pbox("deploy", "--help").stdout


def test_facts_are_kept_per_lab_slot_and_per_inventory(tmp_path):
    """The fact cache of the lab lives in its slot's state (two slots' hosts share names, and `lab down`
    removes it); another inventory gets a directory of its own."""
    from pbox import deploy
    from pbox.paths import LAB_INVENTORY, LAB_STATE

    assert deploy.fact_cache_dir(None) == LAB_STATE / "facts"
    assert deploy.fact_cache_dir(LAB_INVENTORY / "hosts.yml") == LAB_STATE / "facts"
    a, b = (tmp_path / "a" / "hosts.yml"), (tmp_path / "b" / "hosts.yml")
    assert deploy.fact_cache_dir(a) != deploy.fact_cache_dir(b)
    assert LAB_STATE not in deploy.fact_cache_dir(a).parents
