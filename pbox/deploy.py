"""`pbox deploy`: run a playbook through ansible-runner, stream its progress, summarise."""

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pbox.paths import LAB_INVENTORY, PLAYBOOKS, REPO


class DeployError(RuntimeError):
    """The deployment could not be started (bad inventory, missing playbook, ...)."""


@dataclass(frozen=True)
class DeployResult:
    status: str
    rc: int
    stats: dict[str, dict[str, int]]
    elapsed: float
    error: str = ""  # why ansible stopped before any host ran (bad YAML, unknown role, ...)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.status == "successful"

    def hosts(self) -> list[str]:
        return sorted({h for per_host in self.stats.values() for h in per_host})

    def count(self, key: str) -> int:
        return sum(self.stats.get(key, {}).values())


def _printer(out: Console) -> Any:
    styles = {"runner_on_ok": "green", "runner_on_failed": "red", "runner_on_unreachable": "red",
              "runner_on_skipped": "dim"}

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            out.print(f"[bold]PLAY[/bold] {data.get('play', '')}", highlight=False)
        elif kind == "playbook_on_task_start":
            out.print(f"  [cyan]TASK[/cyan] {data.get('task', '')}", highlight=False)
        elif kind in styles:
            word = {"runner_on_ok": "changed" if data.get("res", {}).get("changed") else "ok",
                    "runner_on_failed": "FAILED", "runner_on_unreachable": "UNREACHABLE",
                    "runner_on_skipped": "skipped"}[kind]
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                word = "failed (ignored)"
            line = f"    [{styles[kind]}]{word}[/{styles[kind]}]: {data.get('host', '')}"
            if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                line += f" — {data.get('res', {}).get('msg', '')}"
            out.print(line, highlight=False)
        return True

    return on_event


def run(inventory: Path | None, *, limit: str | None = None, check: bool = False,
        playbook: str = "site.yml", out: Console | None = None,
        vault_password_file: Path | None = None) -> DeployResult:
    import ansible_runner

    out = out or Console()
    inv = (inventory or LAB_INVENTORY / "hosts.yml").resolve()
    if not inv.exists():
        hint = " (the lab is down: run `pbox lab up`)" if inventory is None else ""
        raise DeployError(f"inventory not found: {inv}{hint}")
    book = PLAYBOOKS / playbook
    if not book.is_file():
        raise DeployError(f"no playbook {playbook!r} in {PLAYBOOKS}")
    cmdline = ["--check", "--diff"] if check else []
    if vault_password_file is not None:
        if not vault_password_file.is_file():
            raise DeployError(f"vault password file not found: {vault_password_file}")
        cmdline += ["--vault-password-file", str(vault_password_file.resolve())]
    # The ansible-playbook of this environment, whether or not its venv is on PATH.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    private = Path(tempfile.mkdtemp(prefix="pbox-runner-"))
    t0 = time.monotonic()
    try:
        r = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(REPO), playbook=str(book),
            inventory=str(inv), limit=limit, cmdline=" ".join(cmdline) or None, quiet=True,
            event_handler=_printer(out),
            envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        )
        stats = r.stats or {}
        error = ""
        if r.rc != 0 and not stats:
            # Nothing ran: ansible's own message (it goes to its stdout) is the only explanation.
            lines = [ln for ln in r.stdout.read().splitlines() if ln.strip()]
            error = "\n".join(lines[-15:]) or f"ansible-playbook exited with {r.rc}"
        return DeployResult(r.status, r.rc, {k: v for k, v in stats.items() if isinstance(v, dict)},
                            time.monotonic() - t0, error)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def print_summary(result: DeployResult, out: Console) -> None:
    table = Table(title="deploy summary")
    for col in ("hosts", "ok", "changed", "failed", "unreachable", "elapsed"):
        table.add_column(col)
    failed = result.count("failures")
    table.add_row(str(len(result.hosts())), str(result.count("ok")), str(result.count("changed")),
                  f"[red]{failed}[/red]" if failed else "0", str(result.count("dark")),
                  f"{result.elapsed:.1f}s")
    out.print(table)
    if result.error:
        out.print(f"[red]{result.error}[/red]", highlight=False, markup=False)
    out.print("[green]deploy succeeded[/green]" if result.ok else f"[red]deploy {result.status}[/red]")
