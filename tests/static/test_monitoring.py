"""The monitoring content: rules valid and unit-tested by promtool, every alert with a firing test
and a runbook entry, every dashboard query valid PromQL."""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from pbox.paths import REPO

MONITORING = REPO / "monitoring"
RULES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.test.yml"))
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool missing: scripts/bootstrap-controller.sh installs it (Debian package prometheus)"
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=MONITORING / "tests", check=False)


def alerts() -> dict[str, dict]:
    return {
        r["alert"]: r
        for f in RULES
        for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]
        for r in g["rules"]
        if "alert" in r
    }


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every panel target."""
    out = []
    for d in DASHBOARDS:
        for panel in json.loads(d.read_text(encoding="utf-8"))["panels"]:
            out += [(d.name, panel["title"], t["expr"]) for t in panel.get("targets", [])]
    return out


def test_rules_are_valid():
    r = promtool("check", "rules", *map(str, RULES))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_rules_unit_tests_pass(test_file):
    r = promtool("test", "rules", str(test_file))
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_a_test_that_fires_it():
    fired = {
        case["alertname"]
        for f in RULE_TESTS
        for t in yaml.safe_load(f.read_text(encoding="utf-8"))["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(alerts()) == fired, {"untested": set(alerts()) - fired, "no such alert": fired - set(alerts())}


def test_every_alert_has_a_runbook_entry():
    runbooks = (REPO / "docs/runbooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)$", runbooks, re.M))
    assert set(alerts()) <= headings, f"no runbook entry: {set(alerts()) - headings}"
    for name, rule in alerts().items():
        assert rule["annotations"]["runbook_url"] == f"docs/runbooks.md#{name.lower()}", name
        assert rule["labels"]["severity"] in ("critical", "warning"), name


def test_the_handbook_names_every_alert():
    handbook = (REPO / "docs/operations.md").read_text(encoding="utf-8")
    assert not [a for a in alerts() if f"`{a}`" not in handbook]


def test_dashboards_have_panels_with_valid_queries(tmp_path):
    queries = dashboard_queries()
    assert DASHBOARDS and queries
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:q{i}", "expr": expr} for i, (_, _, expr) in enumerate(queries)
    ]}]}
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    r = promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
