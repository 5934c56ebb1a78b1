"""Run every check against every host of an inventory (testinfra's ansible backend: SSH as the
inventory says, sudo where it says become), hosts in parallel, and assemble the report."""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbox.audit_report.app_checks import GROUP_CHECKS
from pbox.audit_report.checks import HOST_CHECKS
from pbox.audit_report.expected import expected_values, inventory_hosts
from pbox.audit_report.model import HostReport, Report, resolve_container_checks
from pbox.audit_report.probe import Ctx, Probe, TestinfraProbe
from pbox.paths import REPO

CONTAINER_KINDS = {
    "systemd-nspawn",
    "lxc",
    "lxc-libvirt",
    "docker",
    "podman",
    "openvz",
    "container-other",
    "wsl",
}


def testinfra_probe(host: str, inventory: Path) -> Probe:
    import testinfra

    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    # testinfra reads the inventory with the ansible-inventory of this environment.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    return TestinfraProbe(testinfra.get_host(f"ansible://{host}?ansible_inventory={inventory}"))


def check_host(
    name: str, address: str, groups: list[str], expected: dict[str, Any], probe: Probe
) -> HostReport:
    virt = probe.run("systemd-detect-virt || true").stdout.strip() or "unknown"
    container = virt in CONTAINER_KINDS
    where = (
        f"{virt} container (shares the controller's kernel)"
        if container
        else (f"{virt} guest (own kernel)" if virt not in ("none", "unknown") else "host (own kernel)")
    )
    report = HostReport(name, address, groups, virt, container)
    ctx = Ctx(name, probe, expected, groups, container, where)
    for check in HOST_CHECKS:
        check(ctx)
    for group, check in GROUP_CHECKS.items():
        if group in groups:
            check(ctx)
    report.findings = ctx.findings
    return report


def _safe_check(name: str, info: dict[str, Any], expected: dict[str, Any], inventory: Path) -> HostReport:
    try:
        return check_host(name, info["address"], info["groups"], expected, testinfra_probe(name, inventory))
    except Exception as e:  # an unreachable or broken host is a finding, not a crash of the report
        return HostReport(
            name,
            info["address"],
            info["groups"],
            "unknown",
            False,
            error=f"{type(e).__name__}: {str(e)[:500]}",
        )


def run_audit(
    inventory: Path, limit: str | None = None, vault_password_file: Path | None = None, workers: int = 8
) -> Report:
    t0 = time.monotonic()
    inventory = inventory.resolve()
    hosts = inventory_hosts(inventory, limit, vault_password_file)
    expected, problems = expected_values(inventory, limit, vault_password_file)
    reports: list[HostReport] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {}
        for name, info in sorted(hosts.items()):
            if name not in expected:
                reports.append(
                    HostReport(
                        name,
                        info["address"],
                        info["groups"],
                        "unknown",
                        False,
                        error=problems.get(name, "no expected values (host not reached)"),
                    )
                )
                continue
            futures[name] = pool.submit(_safe_check, name, info, expected[name], inventory)
        reports += [f.result() for f in futures.values()]
    reports.sort(key=lambda r: r.host)
    resolve_container_checks(reports)
    return Report(
        str(inventory), datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), reports, time.monotonic() - t0
    )
