"""`pbox deploy`: run a playbook through ansible-runner, stream its progress, summarise."""

import hashlib
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

from pbox.paths import CACHE, LAB_INVENTORY, LAB_STATE, PLAYBOOKS, REPO

SLOWEST = 8  # tasks named in the summary
# Facts are gathered once and kept on disk between deploys (a re-run skips the gathering round): for this
# long, so a host's changed memory or CPUs reach the settings derived from them within the hour.
FACT_CACHE_SECONDS = 3600


class DeployError(RuntimeError):
    """The deployment could not be started (bad inventory, missing playbook, ...)."""


@dataclass(frozen=True)
class DeployResult:
    status: str
    rc: int
    stats: dict[str, dict[str, int]]
    elapsed: float
    error: str = ""  # why ansible stopped before any host ran (bad YAML, unknown role, ...)
    failures: tuple[str, ...] = ()  # "host: task — message" of every failed task that was not ignored
    plays: tuple[tuple[str, float], ...] = ()  # (play, seconds) in the order they ran
    slowest: tuple[tuple[str, float], ...] = ()  # (task, seconds over all its hosts), slowest first

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.status == "successful"

    def hosts(self) -> list[str]:
        return sorted({h for per_host in self.stats.values() for h in per_host})

    def count(self, key: str) -> int:
        return sum(self.stats.get(key, {}).values())


def failure_line(data: dict[str, Any]) -> str:
    """One line for a failed task: host, task, and the module's message (a command's stderr tail)."""
    res = data.get("res", {})
    detail = (res.get("stderr") or "").strip().splitlines()[-3:] if isinstance(res.get("stderr"), str) else []
    msg = " ".join([str(res.get("msg", "")).strip(), *detail]).strip()
    return f"{data.get('host', '')}: {data.get('task', '')} — {msg}"


def durations(starts: list[tuple[str, float]], end: float) -> list[tuple[str, float]]:
    """(name, seconds) of each step, from the start times of consecutive steps and the end."""
    stops = [t for _, t in starts[1:]] + ([end] if starts else [])
    return [(name, round(stop - start, 1)) for (name, start), stop in zip(starts, stops, strict=True)]


def _printer(out: Console, failures: list[str] | None = None,
             play_starts: list[tuple[str, float]] | None = None,
             task_starts: list[tuple[str, float]] | None = None) -> Any:
    styles = {"runner_on_ok": "green", "runner_on_failed": "red", "runner_on_unreachable": "red",
              "runner_on_skipped": "dim"}

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            if play_starts is not None:
                play_starts.append((str(data.get("play", "")), time.monotonic()))
            if task_starts is not None:  # a play's fact gathering and setup count as its own step
                task_starts.append((f"{data.get('play', '')} (start)", time.monotonic()))
            out.print(f"[bold]PLAY[/bold] {data.get('play', '')}", highlight=False)
        elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            if task_starts is not None:
                task_starts.append((str(data.get("task", "")), time.monotonic()))
            out.print(f"  [cyan]TASK[/cyan] {data.get('task', '')}", highlight=False)
        elif kind in styles:
            word = {"runner_on_ok": "changed" if data.get("res", {}).get("changed") else "ok",
                    "runner_on_failed": "FAILED", "runner_on_unreachable": "UNREACHABLE",
                    "runner_on_skipped": "skipped"}[kind]
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                word = "failed (ignored)"
            elif kind in ("runner_on_failed", "runner_on_unreachable") and failures is not None:
                failures.append(failure_line(data))
            line = f"    [{styles[kind]}]{word}[/{styles[kind]}]: {data.get('host', '')}"
            if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                line += f" — {data.get('res', {}).get('msg', '')}"
            out.print(line, highlight=False)
        return True

    return on_event


def fact_cache_dir(inventory: Path | None) -> Path:
    """Where the facts of an inventory's hosts are kept between deploys: the lab's in its slot's state
    (gone with `pbox lab down`; two slots' hosts share names), another inventory's under the cache."""
    if inventory is None or inventory.resolve().is_relative_to(LAB_INVENTORY.resolve()):
        return LAB_STATE / "facts"
    return CACHE / "facts" / hashlib.sha256(str(inventory.resolve()).encode()).hexdigest()[:16]


def run(inventory: Path | None, *, limit: str | None = None, check: bool = False,
        playbook: str = "site.yml", out: Console | None = None,
        vault_password_file: Path | None = None, extravars: dict[str, Any] | None = None,
        tags: str | None = None) -> DeployResult:
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
    failures: list[str] = []
    play_starts: list[tuple[str, float]] = []
    task_starts: list[tuple[str, float]] = []
    t0 = time.monotonic()
    try:
        r = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(REPO), playbook=str(book),
            inventory=str(inv), limit=limit, tags=tags, cmdline=" ".join(cmdline) or None, quiet=True,
            event_handler=_printer(out, failures, play_starts, task_starts), extravars=extravars or None,
            # No colour codes: ansible's own messages are shown in the summary as plain text.
            envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                     "ANSIBLE_CACHE_PLUGIN_TIMEOUT": str(FACT_CACHE_SECONDS)},
            # ansible-runner keeps facts in a jsonfile cache under its (temporary) artifacts directory
            # and sets ansible's cache variables itself; an absolute path puts the cache where it lasts.
            fact_cache_type="jsonfile", fact_cache=str(fact_cache_dir(inventory)),
        )
        stats = r.stats or {}
        error = ""
        if r.rc != 0 and not stats:
            # Nothing ran: ansible's own message (it goes to its stdout) is the only explanation.
            lines = [ln for ln in r.stdout.read().splitlines() if ln.strip()]
            error = "\n".join(lines[-15:]) or f"ansible-playbook exited with {r.rc}"
        end = time.monotonic()
        slowest = sorted(durations(task_starts, end), key=lambda step: -step[1])[:SLOWEST]
        return DeployResult(r.status, r.rc, {k: v for k, v in stats.items() if isinstance(v, dict)},
                            end - t0, error, tuple(failures), tuple(durations(play_starts, end)),
                            tuple(slowest))
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
    if result.plays:
        out.print("time per play: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in result.plays),
                  highlight=False, markup=False)
    if result.slowest:
        out.print("slowest tasks: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in result.slowest),
                  highlight=False, markup=False)
    if result.error:
        out.print(result.error, style="red", highlight=False, markup=False)
    out.print("[green]deploy succeeded[/green]" if result.ok else f"[red]deploy {result.status}[/red]")
