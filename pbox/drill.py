"""`pbox drill`: a restore drill through playbooks/restore-drill.yml, and its report.

The playbook restores the newest backup (or a point in time) onto the site's scratch host, starts
the app against it and compares record counts and digests with the source; it writes a JSON report
on the controller, which this module reads back and prints.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pbox import deploy

DRILLS = Path("/var/lib/pbox/drills")


@dataclass(frozen=True)
class DrillRequest:
    inventory: Path | None = None
    repo: int = 1
    repo_path: str = ""
    target_time: str = ""
    site: str = ""
    report: Path | None = None
    vault_password_file: Path | None = None


@dataclass(frozen=True)
class DrillOutcome:
    result: deploy.DeployResult
    report_path: Path
    report: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.result.ok and bool(self.report and self.report.get("ok"))


def default_report(profile: str) -> Path:
    return DRILLS / profile / f"drill-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def run_drill(req: DrillRequest, out: Console, profile: str = "lab") -> DrillOutcome:
    report_path = (req.report or default_report(profile)).resolve()
    extravars: dict[str, Any] = {"drill_repo": req.repo, "drill_repo_path": req.repo_path,
                                 "drill_target_time": req.target_time, "drill_report": str(report_path)}
    if req.site:
        extravars["drill_site"] = req.site
    report_path.unlink(missing_ok=True)
    result = deploy.run(req.inventory, playbook="restore-drill.yml", out=out,
                        vault_password_file=req.vault_password_file, extravars=extravars)
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
    return DrillOutcome(result, report_path, report)


def print_outcome(o: DrillOutcome, out: Console, err: Console) -> None:
    r = o.report
    if r is not None:
        table = Table(title=f"restore drill: stanza {r['stanza']}, repo{r['repo']}, target {r['target']}")
        for col in ("", "source", "restored"):
            table.add_column(col)
        src, dst = r.get("source", {}), r.get("restored", {})
        table.add_row("record versions", str(src.get("versions")), str(dst.get("versions", "—")))
        table.add_row("days (count+md5 each)", str(len(src.get("days", []))), str(len(dst.get("days", []))))
        table.add_row("attachments", str(src.get("attachments")), str(dst.get("attachments", "—")))
        table.add_row("newest record", str(src.get("newest")), str(dst.get("newest", "—")))
        out.print(table)
        out.print(f"recovery point {r['recovery_point']}   restore time {r['restore_seconds']} s   "
                  f"RPO {r['rpo_seconds']} s   report {o.report_path}", highlight=False)
    if o.ok:
        out.print("[green]restore drill passed[/green]")
        return
    reasons = list(r["problems"]) if r else []
    if not reasons:
        reasons = list(o.result.failures) or [o.result.error or f"playbook {o.result.status}"]
    err.print("[red bold]RESTORE DRILL FAILED[/red bold]", highlight=False)
    for reason in reasons:
        err.print(f"  - {reason}", highlight=False, markup=False, soft_wrap=True)
