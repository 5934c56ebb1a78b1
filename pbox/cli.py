"""pbox: install and operate province-in-a-box (省级汽车维修电子健康档案系统)."""

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pbox.lab.profile import ProfileError, available_profiles

console = Console()
err = Console(stderr=True)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
lab_app = typer.Typer(help="The lab: local test hosts (systemd-nspawn containers and KVM guests) "
                           "on a private bridge, with a generated Ansible inventory.",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")
audit_app = typer.Typer(help="Security audit (GB/T 22239): checks an auditor can run. Without a "
                             "subcommand: the host and application report over an inventory.",
                        invoke_without_command=True)
app.add_typer(audit_app, name="audit")


def fail(message: str) -> "typer.Exit":
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def progress(message: str) -> None:
    console.print(f"[cyan]==>[/cyan] {message}", highlight=False)


@lab_app.command("up")
def lab_up(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Deployment-mode profile to bring up: "
                                         "a folder of inventories/ with a lab.yml.")] = "centralized",
) -> None:
    """Bring up every host of a profile (safe to run again) and write inventories/lab/hosts.yml."""
    from pbox.lab import lab

    try:
        with console.status("bringing up the lab…"):
            prof = lab.up(profile, progress)
    except (ProfileError, lab.LabError, RuntimeError) as e:
        raise fail(str(e)) from None
    console.print(f"[green]lab up[/green]: profile {prof.name}, {len(prof.hosts)} hosts; "
                  f"inventory {lab.LAB_INVENTORY / 'hosts.yml'}")


@lab_app.command("down")
def lab_down() -> None:
    """Stop every lab host and service and remove all the lab made: namespaces, bridge, mounts, files."""
    from pbox.lab import lab

    try:
        lab.down(progress)
    except (lab.LabError, RuntimeError) as e:
        raise fail(str(e)) from None
    console.print("[green]lab down[/green]: nothing left behind")


@lab_app.command("status")
def lab_status() -> None:
    """Show the lab's profile and each host: kind, address, groups, whether it runs and answers SSH."""
    from pbox.lab import lab

    state, hosts = lab.status()
    if state is None:
        console.print("the lab is down")
        return
    table = Table(title=f"lab: profile {state.profile}")
    for col in ("host", "kind", "address", "groups", "running", "ssh"):
        table.add_column(col)
    for h in hosts:
        table.add_row(h.host.name, h.host.kind, str(h.host.address), ", ".join(h.host.groups),
                      "yes" if h.running else "[red]no[/red]", "yes" if h.ssh else "[red]no[/red]")
    console.print(table)
    console.print(f"inventory: {lab.LAB_INVENTORY / 'hosts.yml'}   ssh: pbox lab ssh HOST")
    for label, where in lab.endpoints(lab.load_profile(state.profile)):
        console.print(f"{label}: {where}", highlight=False)


@lab_app.command("ssh", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_ssh(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Lab host name, as in `pbox lab status`.")],
) -> None:
    """Open an SSH session to a lab host as the admin user (extra arguments run as a command)."""
    from pbox.lab import lab

    state = lab.LabState.load()
    if state is None:
        raise fail("the lab is down: run `pbox lab up` first")
    try:
        target = lab.load_profile(state.profile).host(host)
    except ProfileError as e:
        raise fail(str(e)) from None
    argv = lab.ssh_argv(target, *ctx.args)
    os.execvp(argv[0], argv)  # noqa: S606 - replaces pbox with the interactive ssh


@app.command("deploy")
def deploy(
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory to deploy to; "
                                                   "default: the lab's generated inventory.")] = None,
    limit: Annotated[str | None, typer.Option("--limit", "-l", help="Only these hosts/groups "
                                              "(Ansible limit pattern).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Dry run: report what would change.")] = False,
    playbook: Annotated[str, typer.Option("--playbook", help="Playbook in playbooks/ to run.")] = "site.yml",
    tags: Annotated[str | None, typer.Option(
        "--tags", "-t", help="Only these parts of the roles, e.g. `configure` (re-apply configuration only), "
        "`install`, `service`, or one role's: `postgresql_configure`.")] = None,
    vault_password_file: Annotated[Path | None, typer.Option(
        "--vault-password-file", help="Vault password of an inventory made by `pbox init`.")] = None,
) -> None:
    """Run site.yml (or another playbook) through ansible-runner, streaming progress, then a summary."""
    from pbox import deploy as deploy_mod

    try:
        result = deploy_mod.run(inventory, limit=limit, check=check, playbook=playbook, out=console,
                                vault_password_file=vault_password_file, tags=tags)
    except deploy_mod.DeployError as e:
        raise fail(str(e)) from None
    deploy_mod.print_summary(result, console)
    if not result.ok:
        raise typer.Exit(code=1)


@app.command("drill")
def drill(
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory of the site; "
                                                   "default: the lab's generated inventory.")] = None,
    repo: Annotated[int, typer.Option("--repo", min=1, max=2, help="Repository to restore from: 1 the "
                                      "site's object store, 2 the offsite copy.")] = 1,
    target_time: Annotated[str, typer.Option("--target-time", help="Point in time to recover to, e.g. "
                                             "'2026-05-01 14:30:00+08'; default: the latest.")] = "",
    repo_path: Annotated[str, typer.Option("--repo-path", help="Restore from a copy of the repository "
                                           "directory at this path on the offsite host (repo 2).")] = "",
    site: Annotated[str, typer.Option("--site", help="Site group to drill (default: the only site).")] = "",
    report: Annotated[Path | None, typer.Option("--report", help="Where to write the JSON report; default "
                                                "/var/lib/pbox/drills/<profile>/drill-<time>.json.")] = None,
    vault_password_file: Annotated[Path | None, typer.Option(
        "--vault-password-file", help="Vault password of an inventory made by `pbox init`.")] = None,
) -> None:
    """Restore drill: restore the newest backup (or --target-time) onto the scratch host, start the app
    against it, compare record counts and digests with the source; print RPO and restore time."""
    from pbox import deploy as deploy_mod
    from pbox import drill as drill_mod

    profile = inventory.resolve().name if inventory else "lab"
    req = drill_mod.DrillRequest(inventory, repo, repo_path, target_time, site, report, vault_password_file)
    try:
        outcome = drill_mod.run_drill(req, console, profile)
    except deploy_mod.DeployError as e:
        raise fail(str(e)) from None
    drill_mod.print_outcome(outcome, console, err)
    if not outcome.ok:
        raise typer.Exit(code=1)


@app.command("import")
def import_records(
    target: Annotated[str, typer.Argument(help="An app host, or a site group (e.g. site_nanjing): its "
                                          "first app host runs the import.")],
    file: Annotated[Path, typer.Argument(help="Records as .csv or .jsonl (docs/operations.md).",
                                         exists=True, dir_okay=False, readable=True)],
    enterprise: Annotated[str | None, typer.Option("--enterprise", help="Every record is this "
                                                   "enterprise's (its USCC).")] = None,
    source: Annotated[str | None, typer.Option("--source", help="A migration source: each line names "
                                               "its enterprise in enterprise_uscc.")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Records per transaction.")] = 500,
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory of the site; "
                                                   "default: the lab's generated inventory.")] = None,
    vault_password_file: Annotated[Path | None, typer.Option(
        "--vault-password-file", help="Vault password of an inventory made by `pbox init`.")] = None,
) -> None:
    """Bulk-import historical repair records on a site's app host (`pbox-admin import` over SSH):
    resumable (run the same command again), rejects fetched back as FILE.rejects.tsv."""
    from pbox import importer
    from pbox.paths import LAB_INVENTORY

    if (enterprise is None) == (source is None):
        raise fail("give exactly one of --enterprise or --source")
    inv = inventory or LAB_INVENTORY / "hosts.yml"
    if not inv.exists():
        raise fail(f"inventory not found: {inv}")
    try:
        where = importer.resolve(inv, target, vault_password_file)
    except importer.ImportTargetError as e:
        raise fail(str(e)) from None
    progress(f"importing {file.name} on {where.host}")
    who = ["--enterprise", enterprise] if enterprise else ["--source", str(source)]
    status = importer.run(where, file, [*who, "--batch", str(batch)])
    if status not in (0, 1):
        raise fail(f"the import on {where.host} did not finish (exit {status}): run the same command "
                   "again to continue")
    if status == 1:
        console.print(f"rejected lines: {file.name}.rejects.tsv", highlight=False)
        raise typer.Exit(code=1)


@app.command("profiles")
def profiles() -> None:
    """List the deployment-mode profiles that have a lab layout."""
    for name in available_profiles():
        console.print(name)


@audit_app.callback()
def audit_report(
    ctx: typer.Context,
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory to audit; "
                                                   "default: the lab's generated inventory.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for report.json and "
                                         "report.html.")] = Path("pbox-audit"),
    limit: Annotated[str | None, typer.Option("--limit", "-l", help="Only these hosts/groups "
                                              "(comma-separated).")] = None,
    vault_password_file: Annotated[Path | None, typer.Option(
        "--vault-password-file", help="Vault password of an inventory made by `pbox init`.")] = None,
) -> None:
    """Read-only GB/T 22239-2019 level-3 checks of every host and the app's configuration (testinfra
    over the Ansible inventory); writes an HTML and a JSON report; exit 1 if any check fails."""
    if ctx.invoked_subcommand is not None:
        return
    from pbox.audit_report import render, runner
    from pbox.audit_report.expected import ExpectedError
    from pbox.paths import LAB_INVENTORY

    inv = inventory or LAB_INVENTORY / "hosts.yml"
    if not inv.exists():
        hint = "" if inventory else " (the lab is down: run `pbox lab up`)"
        raise fail(f"inventory not found: {inv}{hint}")
    try:
        with console.status("checking every host…"):
            report = runner.run_audit(inv, limit, vault_password_file)
    except ExpectedError as e:
        raise fail(str(e)) from None
    js, page = render.write(report, output)
    table = Table(title=f"GB/T 22239-2019 level 3: {len(report.hosts)} hosts, {report.elapsed_seconds:.1f}s")
    for col in ("host", "kind", "pass", "fail", "n/a"):
        table.add_column(col)
    for h in report.hosts:
        c = h.counts()
        failed = f"[red]{c['fail']}[/red]" if c["fail"] else "0"
        table.add_row(h.host, h.virtualization, str(c["pass"]), failed, str(c["na"]))
    console.print(table)
    for host, f in report.failures():
        console.print(f"[red]FAIL[/red] {host} {f.clause} {escape(f.requirement)}: expected "
                      f"{escape(f.expected)}, observed {escape(f.observed)}", highlight=False)
    for h in report.hosts:
        if h.error:
            console.print(f"[red]ERROR[/red] {h.host}: {escape(h.error)}", highlight=False)
    console.print(f"report: {page}  {js}", highlight=False)
    console.print("[green]all checks pass[/green]" if report.ok else "[red]checks failed[/red]")
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command("verify-log")
def audit_verify_log(
    database_url: Annotated[str, typer.Option("--database-url", envvar="PBOX_DATABASE_URL",
                                              help="The application database (SQLAlchemy URL).")],
    audit_key_file: Annotated[Path | None, typer.Option(
        "--audit-key-file", help="The node's audit key: on the controller, <secrets>/<site>/app_audit_key "
        "(the generated secret; its SHA-256 is the key), or a file with the key in hex. Or the "
        "PBOX_AUDIT_KEY variable (hex, as in the node's app.env).")] = None,
    anchors: Annotated[Path | None, typer.Option(
        "--anchors", help="The central log host's anchor file (pbox-audit-anchors.log), '-' for stdin: "
        "every chain head anchored there must still be in the chain.")] = None,
    node: Annotated[str | None, typer.Option(
        "--node", help="Check only this node's anchors (the file may hold several nodes').")] = None,
) -> None:
    """Verify the application's audit chain with its key (and against the log host's anchors); exit 1
    and name the first broken row or anchor if any."""
    import os
    import sys

    from sqlalchemy.exc import SQLAlchemyError

    from app.security.auditlog import MissingAuditKey, key_from_secret_file, parse_key
    from pbox.audit_log import verify_log

    try:
        if audit_key_file is not None:
            key = key_from_secret_file(audit_key_file.read_text())
        else:
            key = parse_key(os.environ.get("PBOX_AUDIT_KEY"))
    except (OSError, ValueError) as e:
        raise fail(f"cannot read the audit key: {e}") from None
    try:
        lines = None
        if anchors is not None:
            lines = sys.stdin.readlines() if str(anchors) == "-" else anchors.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"cannot read the anchors: {e}") from None
    try:
        v = verify_log(database_url, key, lines, node)
    except SQLAlchemyError as e:
        raise fail(f"cannot read the audit log: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    except MissingAuditKey as e:
        raise fail(f"{e} (--audit-key-file or PBOX_AUDIT_KEY)") from None
    except ValueError as e:
        raise fail(f"{e} (--node)") from None
    report = v.chain
    if not report.ok:
        err.print(f"[red]audit log broken[/red] at seq {report.broken_seq}: {report.reason} "
                  f"({report.checked} rows verified before it)", highlight=False, soft_wrap=True)
    else:
        console.print(f"[green]audit log intact[/green]: {report.checked} rows, head {report.head}"
                      f"{'' if key else ' (no audit key given: plain hashes only)'}", highlight=False)
    if v.anchors is not None:
        for seq, reason in v.anchors.mismatches:
            err.print(f"[red]audit log differs from an anchor[/red] at seq {seq}: {reason}",
                      highlight=False, soft_wrap=True)
        if v.anchors.checked == 0:
            where = f" for node {node}" if node else ""
            err.print(f"[red]no anchors found[/red] in the anchor file{where}", highlight=False)
        elif v.anchors.ok:
            console.print(f"[green]anchors match[/green]: {v.anchors.checked} anchors of "
                          f"{', '.join(sorted(v.anchor_nodes))}", highlight=False)
    if not v.ok:
        raise typer.Exit(code=1)


exchange_app = typer.Typer(help="Node-to-node exchange (city, province, ministry): state and reconciliation.",
                           no_args_is_help=True)
app.add_typer(exchange_app, name="exchange")


@exchange_app.command("reconcile")
def exchange_reconcile(
    url: Annotated[str, typer.Option("--url", envvar="PBOX_NODE_URL", help="The node, e.g. https://app.example:8443")],
    token: Annotated[str | None, typer.Option("--token", envvar="PBOX_STAFF_TOKEN",
                                              help="A system administrator's session token.")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="Log in as this system "
                                                 "administrator (password and TOTP are asked for).")] = None,
    cacert: Annotated[Path | None, typer.Option("--cacert", envvar="PBOX_CA_FILE",
                                                help="CA certificate that signed the node's.")] = None,
    run: Annotated[bool, typer.Option("--run", help="Reconcile now (re-requesting what is missing) "
                                      "before showing the state.")] = False,
) -> None:
    """Show how this node's records compare with each peer's, per day and origin; exit 1 on any gap."""
    from pbox.exchange import AdminError, NodeAdmin, login

    try:
        if token is None:
            if username is None:
                raise fail("give --token (or PBOX_STAFF_TOKEN) or --username")
            password = typer.prompt("password", hide_input=True)
            totp = typer.prompt("TOTP code")
            token = login(url, username, password, totp, cacert)
        node = NodeAdmin(url, token, cacert)
        if run:
            for peer, result in node.call("POST", "/reconcile/run").items():
                if not result.get("ok"):
                    err.print(f"[yellow]{peer}[/yellow]: not reachable: {result.get('error')}",
                              highlight=False)
        state = node.call("GET", "/reconcile")
    except AdminError as e:
        raise fail(str(e)) from None
    table = Table(title=f"reconciliation at {state['node']}")
    cols = ("peer", "day", "origin", "theirs", "ours", "missing", "re-requested", "refused", "status",
            "checked")
    for col in cols:
        table.add_column(col)
    bad = 0
    for d in state["days"]:
        colour = "green" if d["status"] == "ok" else "red"
        bad += d["status"] != "ok"
        table.add_row(d["peer"], d["day"], d["origin_region"], str(d["their_count"]), str(d["our_count"]),
                      str(d["missing"]), str(d["rerequested"]), str(d.get("refused", 0)),
                      f"[{colour}]{d['status']}[/{colour}]",
                      str(d["checked_at"])[:19])
    console.print(table)
    console.print(f"{len(state['days'])} day/origin pairs, {bad} not in agreement", highlight=False)
    if bad:
        raise typer.Exit(code=1)


inventory_app = typer.Typer(help="Production inventories: check one before `pbox deploy`.",
                            no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
MODE_HELP = ("Deployment mode: centralized (one provincial site), distributed (province + a full site per "
             "city) or hybrid (province serving most cities + some city sites).")
CITIES_HELP = ("City sites (distributed/hybrid): GB/T 2260 codes, comma-separated, each optionally "
               "CODE=name for the site's short name (default c<CODE>), e.g. 320100=nanjing,320500.")
VAULT_HELP = ("ansible-vault password file, outside the inventory: used if it exists, else generated "
              "there (0600). Default /var/lib/pbox/vault/<output dir name>.pass.")


@app.command("init")
def init(
    mode: Annotated[Literal["centralized", "distributed", "hybrid"],
                    typer.Option("--mode", "-m", help=MODE_HELP, show_default=False)],
    province: Annotated[str, typer.Option("--province", "-p", show_default=False,
                                          help="GB/T 2260 code of the province, e.g. 320000 (江苏省).")],
    cities: Annotated[list[str] | None, typer.Option("--cities", "-c", help=CITIES_HELP)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Directory to write; default "
                                                "inventories/<province>-<mode>.")] = None,
    hosts_file: Annotated[Path | None, typer.Option("--hosts-file", help="YAML mapping host name → "
                                                    "address; hosts not in it get placeholder addresses "
                                                    "(192.0.2.x).")] = None,
    vault_password_file: Annotated[Path | None, typer.Option("--vault-password-file",
                                                             help=VAULT_HELP)] = None,
    domain: Annotated[str, typer.Option("--domain", help="DNS domain of the portals: portal.<domain>, "
                                        "<city>.<domain>.")] = "pbox.internal",
    force: Annotated[bool, typer.Option("--force", help="Replace the output directory.")] = False,
    crypto_suite: Annotated[Literal["sm", "standard"], typer.Option(
        "--crypto-suite", help="sm: national algorithms (SM4-GCM, HMAC-SM3, SM2; 密评, the default for "
        "new provinces); standard: AES-GCM, HMAC-SHA256, Ed25519.")] = "sm",
) -> None:
    """Write a new production inventory for a real province, with vaulted secrets, and check it."""
    from pbox import init as init_mod
    from pbox.inventory_check import check, print_report

    req = init_mod.Request(mode, province, tuple(cities or ()), output, hosts_file, vault_password_file,
                           domain, force, crypto_suite)
    try:
        with console.status("writing the inventory…"):
            written = init_mod.write(req)
    except init_mod.InitError as e:
        raise fail(str(e)) from None
    init_mod.print_written(written, console)
    progress(f"checking {written.output}")
    report = check(written.output)
    print_report(report, written.output, console)
    if not report.ok:
        raise typer.Exit(code=1)


@inventory_app.command("check")
def inventory_check(
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (directory or file) to "
                                            "check.", show_default=False)],
    vault_password_file: Annotated[Path | None, typer.Option("--vault-password-file", help="Needed only "
                                                             "if whole files are vaulted.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings (placeholder addresses) fail too.")
                      ] = False,
) -> None:
    """Check an inventory: known groups, required variables, unique addresses, sites and region codes."""
    from pbox.inventory_check import check, print_report

    report = check(inventory, vault_password_file)
    print_report(report, inventory, console)
    if strict and report.ok and report.warnings:
        err.print("[red]error:[/red] --strict: the warnings above must be fixed first", highlight=False)
    if not report.ok or (strict and report.warnings):
        raise typer.Exit(code=1)


def main() -> None:
    """Entry point: usage errors print one line and exit 2, never a traceback."""
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.TyperException as e:  # usage errors: unknown option, missing argument, ...
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        if message:  # `pbox` alone prints the help and no error line
            err.print(f"[red]error:[/red] {message} (see --help)", highlight=False, soft_wrap=True)
        sys.exit(getattr(e, "exit_code", 2))
