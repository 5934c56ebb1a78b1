"""What the report holds: per host, per requirement, expected vs observed, and the verdict."""

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["pass", "fail", "na"]
CONTAINER_NA = "not applicable in container"


@dataclass
class Finding:
    check: str  # stable id, the same on every host (e.g. "sysctl.kernel.kptr_restrict")
    clause: str  # GB/T 22239-2019 clause, e.g. "8.1.4.1 c"
    requirement: str  # what the clause asks, in a few words
    expected: str
    observed: str
    status: Status
    evidence: str  # the command run and what it printed
    where: str = ""  # on which kind of host it was verified (and, for n/a, where instead)


@dataclass
class HostReport:
    host: str
    address: str
    groups: list[str]
    virtualization: str  # systemd-detect-virt: kvm, qemu, systemd-nspawn, none, ...
    container: bool
    findings: list[Finding] = field(default_factory=list)
    error: str = ""  # the host could not be checked at all

    def counts(self) -> Counter[str]:
        c = Counter(f.status for f in self.findings)
        if self.error:
            c["fail"] += 1
        return c


@dataclass
class Report:
    inventory: str
    generated_at: str
    hosts: list[HostReport]
    elapsed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(not h.error and all(f.status != "fail" for f in h.findings) for h in self.hosts)

    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for h in self.hosts:
            total.update(h.counts())
        return total

    def by_clause(self) -> list[tuple[str, Counter[str]]]:
        clauses: dict[str, Counter[str]] = {}
        for h in self.hosts:
            for f in h.findings:
                clauses.setdefault(f.clause, Counter())[f.status] += 1
        return sorted(
            clauses.items(),
            key=lambda kv: [int(p) if p.isdigit() else 0 for p in kv[0].split()[0].split(".")] + [kv[0]],
        )

    def failures(self) -> list[tuple[str, Finding]]:
        return [(h.host, f) for h in self.hosts for f in h.findings if f.status == "fail"]

    def to_dict(self) -> dict[str, object]:
        return {
            "standard": "GB/T 22239-2019 level 3 (等级保护 2.0 第三级)",
            "inventory": self.inventory,
            "generated_at": self.generated_at,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "ok": self.ok,
            "summary": dict(self.counts()),
            "hosts": [asdict(h) for h in self.hosts],
        }


def resolve_container_checks(hosts: list[HostReport]) -> None:
    """A check a container cannot have says where it was verified instead, only if that is true:
    some host with a kernel of its own passed the same check in this run."""
    verified: dict[str, list[str]] = {}
    for h in hosts:
        if not h.container:
            for f in h.findings:
                if f.status == "pass":
                    verified.setdefault(f.check, []).append(h.host)
    for h in hosts:
        if not h.container:
            continue
        for f in h.findings:
            if f.status == "na" and f.where.startswith(CONTAINER_NA):
                where = verified.get(f.check)
                f.where = (
                    f"{CONTAINER_NA}, verified on {', '.join(where)}"
                    if where
                    else f"{CONTAINER_NA}; no host with its own kernel in this inventory verified it"
                )
