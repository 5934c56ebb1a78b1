"""How a check reads a host: one command at a time, each recorded as evidence."""

import shlex
from dataclasses import dataclass, field
from typing import Any, Protocol

from pbox.audit_report.model import CONTAINER_NA, Finding

EVIDENCE_CHARS = 600


@dataclass(frozen=True)
class Output:
    rc: int
    stdout: str
    stderr: str


class Probe(Protocol):
    def run(self, command: str) -> Output: ...


class TestinfraProbe:
    """A testinfra host (its ansible backend: SSH with the inventory's user, key and become)."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def run(self, command: str) -> Output:
        r = self._host.run(command)
        return Output(r.rc, r.stdout, r.stderr)


@dataclass
class Ctx:
    """One host under check: its probe, the expected values (role defaults + inventory), findings."""

    host: str
    probe: Probe
    expected: dict[str, Any]
    groups: list[str]
    container: bool
    where: str
    findings: list[Finding] = field(default_factory=list)
    _cache: dict[str, Output] = field(default_factory=dict)

    def run(self, command: str) -> Output:
        if command not in self._cache:
            self._cache[command] = self.probe.run(command)
        return self._cache[command]

    def read(self, path: str) -> str | None:
        """A file's text, or None when it does not exist (read as root through sudo)."""
        out = self.run(f"cat {shlex.quote(path)}")
        return out.stdout if out.rc == 0 else None

    def e(self, name: str) -> Any:
        return self.expected[f"hardening_{name}"]

    def add(
        self,
        check: str,
        clause: str,
        requirement: str,
        expected: object,
        observed: object,
        ok: bool,
        command: str,
        output: str | None = None,
    ) -> None:
        shown = (
            output if output is not None else self._cache[command].stdout if command in self._cache else ""
        ).strip()
        if len(shown) > EVIDENCE_CHARS:
            shown = shown[:EVIDENCE_CHARS] + " …"
        evidence = f"$ {command}\n{shown}".strip()
        status = "pass" if ok else "fail"
        self.findings.append(
            Finding(check, clause, requirement, str(expected), str(observed), status, evidence, self.where)
        )

    def unit(self, check: str, clause: str, requirement: str, unit: str, want: str = "active") -> None:
        """A systemd unit in the wanted state: `active` (systemctl is-active) or `enabled` (is-enabled)."""
        command = f"systemctl {'is-enabled' if want == 'enabled' else 'is-active'} {unit}"
        state = self.run(command).stdout.strip()
        self.add(check, clause, requirement, want, state or "absent", state == want, command)

    def not_in_container(self, check: str, clause: str, requirement: str, expected: object) -> None:
        """A check that needs the host's own kernel, on a container: n/a (resolved later to where it
        was verified instead, if anywhere)."""
        why = ("shares the controller's kernel: auditd, kernel.*/fs.* sysctls and "
               "module loading are not the container's")  # fmt: skip
        self.findings.append(Finding(check, clause, requirement, str(expected), "—", "na", why, CONTAINER_NA))
