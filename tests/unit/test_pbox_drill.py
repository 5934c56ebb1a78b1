"""`pbox drill`'s verdict and messages, from the report the playbook writes (the drill itself runs in
the lab: tests/lab/centralized/test_5_backup.py)."""

import io
from pathlib import Path

from rich.console import Console

from pbox import deploy, drill

OK_RESULT = deploy.DeployResult("successful", 0, {}, 1.0)
FAILED_RESULT = deploy.DeployResult("failed", 2, {"failures": {"lb1": 1}}, 1.0,
                                    failures=("lb1: Restore with pgBackRest (repo2) — non-zero return code "
                                              "ERROR: [029]: zst error",))


def report(ok: bool, problems: list[str]) -> dict:
    side = {"versions": 3, "days": [{"day": "2026-05-01", "versions": 3, "md5": "x"}], "attachments": 1,
            "newest": "2026-05-01 10:00:00+08"}
    return {"ok": ok, "problems": problems, "stanza": "pbox", "repo": 1, "target": "latest",
            "recovery_point": "2026-05-01 10:00:05+08", "restore_seconds": 12.5, "rpo_seconds": 0.0,
            "source": side, "restored": side if ok else {}}


def printed(outcome: drill.DrillOutcome) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    drill.print_outcome(outcome, Console(file=out, width=200), Console(file=err, width=200))
    return out.getvalue(), err.getvalue()


def test_a_passing_drill_states_restore_time_and_rpo():
    o = drill.DrillOutcome(OK_RESULT, Path("/r.json"), report(True, []))
    assert o.ok
    out, err = printed(o)
    assert "restore drill passed" in out and "restore time 12.5 s" in out and "RPO 0.0 s" in out
    assert not err


def test_a_mismatch_fails_loudly_with_the_reason():
    o = drill.DrillOutcome(OK_RESULT, Path("/r.json"), report(False, ["per-day counts or digests differ"]))
    assert not o.ok
    _, err = printed(o)
    assert "RESTORE DRILL FAILED" in err and "per-day counts or digests differ" in err


def test_without_a_report_the_failed_task_is_the_reason():
    o = drill.DrillOutcome(FAILED_RESULT, Path("/r.json"), None)
    assert not o.ok
    _, err = printed(o)
    assert "RESTORE DRILL FAILED" in err and "ERROR: [029]" in err


def test_failure_line_keeps_the_command_error():
    line = deploy.failure_line({"host": "lb1", "task": "Restore", "res": {
        "msg": "non-zero return code", "stderr": "WARN: x\nERROR: [029]: raised from local-1 protocol"}})
    assert line.startswith("lb1: Restore — non-zero return code") and "ERROR: [029]" in line
