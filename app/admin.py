"""`app-admin`: the operator's commands on an installed node, run with the app's settings (on a
deployed host through `pbox-admin`, which roles/app installs).

`bootstrap` makes the first system, security or audit administrator at install time: there is no
built-in account, and no one yet to grant the role (GB/T 22239 8.1.4.2 b, c). It is refused once
an account holds that role; later accounts are made by the system administrator in the portal.

Unlike accounts made by an administrator (which get only a one-time activation code, and whose
owner sets the password and enrols the TOTP at first login, so no administrator ever holds their
credentials), a bootstrapped account is enrolled at once: the operator at the host *is* that
administrator, chooses its password here and is shown its TOTP secret once. Run it as the person
who will hold the role (one operator per role where duties are separated); whoever is to hold a
role later gets a fresh account from the system administrator instead.

`roster import FILE.csv|FILE.xlsx` imports the province's licence roster (道路运政 licensed shops;
columns in docs/operations.md): the good rows are imported, each bad row is printed with its line
number and reasons, and the exit status is 1 if any row was bad (2 if the file could not be read).

`import FILE.csv|FILE.jsonl (--enterprise USCC | --source NAME)` imports historical repair records
(app.services.imports; docs/operations.md): resumable, with a progress bar, a rejects file
(FILE.rejects.tsv: line number and reason) and a summary; exit status 1 if any line was rejected, 2 if
the file could not be imported at all.

`audit verify-log` verifies the node's keyed audit chain with the node's own key and, given the
central log host's anchor file (`--anchors FILE`, or `-` for standard input), checks every anchor of
this node against the chain (docs/operations.md).
"""

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from app.db.session import Database
from app.domain.errors import AppError
from app.runtime import Runtime, audit_log, field_cipher, node_name
from app.security.auditlog import MissingAuditKey, verify_with_anchors
from app.security.rbac import Role
from app.services import imports, roster, staff
from app.settings import Settings, get_settings

T = TypeVar("T")
ADMIN_ROLES = (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("app-admin: the two passwords differ")
    return first


def in_one_transaction(settings: Settings, work: Callable[[Session], T]) -> T:
    """`work` in one transaction on a one-connection database, closed afterwards (a command, not a server)."""
    db = Database(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with db.transaction() as session:
            return work(session)
    finally:
        db.dispose()


def bootstrap(role: Role, username: str, password: str) -> staff.NewStaff:
    settings = get_settings()
    audit = audit_log(settings)
    return in_one_transaction(settings, lambda session: staff.bootstrap(
        session, field_cipher(settings), audit, settings.staff_password_min_length, username, password, role,
        settings.staff_otp_algorithm))


def import_roster(path: Path) -> int:
    """The exit status: 0 all rows imported, 1 some rows bad (the good ones imported), 2 file unreadable."""
    settings = get_settings()
    audit = audit_log(settings)
    try:
        actor = f"app-admin:{getpass.getuser()}"
        report = in_one_transaction(settings, lambda session: roster.import_file(session, audit, path, actor))
    except roster.RosterFileError as e:
        print(f"app-admin: {path}: {e}", file=sys.stderr)
        return 2
    for line, reasons in report.bad:
        print(f"{path.name} 第 {line} 行：{'；'.join(reasons)}", file=sys.stderr)
    print(
        f"导入 {report.imported} 行，错误 {len(report.bad)} 行（未导入）；"
        f"审核通过 {len(report.approved)} 家，暂停 {len(report.suspended)} 家，"
        f"恢复 {len(report.reinstated)} 家"
    )
    changes = (("审核通过", report.approved), ("暂停", report.suspended), ("恢复", report.reinstated))
    for label, usccs in changes:
        for u in usccs:
            print(f"{label}: {u}")
    return 1 if report.bad else 0


def import_records(path: Path, who: imports.Attribution, rejects: Path | None, batch: int) -> int:
    """The exit status: 0 every line stored, 1 some lines rejected (the rest stored), 2 not importable."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    settings = get_settings()
    rt = Runtime.from_settings(settings)
    rejects = rejects or path.with_name(path.name + ".rejects.tsv")
    size = path.stat().st_size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[records]:,} 条  {task.fields[rate]:,.0f} 条/秒"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(f"导入 {path.name}", total=size, records=0, rate=0.0)
            started = time.monotonic()

            def advance(done: int, records: int) -> None:
                rate = records / max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=done, records=records, rate=rate)

            actor = f"app-admin:{getpass.getuser()}"
            s = imports.run(rt, path, who, actor, rejects, batch, progress=advance)
            bar.update(task, completed=size)
    except (imports.ImportFileError, OSError, UnicodeDecodeError) as e:
        print(f"app-admin: {path}: {e}", file=sys.stderr)
        return 2
    finally:
        rt.close()
    t = s.totals
    if s.already_done:
        print(f"{path.name} 已导入完毕（file already imported）：")
    elif s.resumed_at:
        print(f"从第 {s.resumed_at} 行之后继续（resumed after line {s.resumed_at}）")
    print(f"本次读取 {s.lines} 条：新增 {s.created}，更新 {s.updated}，未变 {s.unchanged}，拒绝 {s.rejected}")
    print(
        f"全部合计：新增 {t['created']}，更新 {t['updated']}，未变 {t['unchanged']}，拒绝 {t['rejected']}"
        f"（至第 {t['lines']} 行）"
    )
    if t["rejected"]:
        print(f"拒绝的行及原因：{rejects}")
    return 1 if t["rejected"] else 0


def verify_log(anchors: str | None) -> int:
    """Print the verification; 0 intact, 1 broken or an anchor differs, 2 cannot check."""
    settings = get_settings()
    audit = audit_log(settings)
    lines = None
    if anchors is not None:
        lines = sys.stdin.readlines() if anchors == "-" else Path(anchors).read_text().splitlines()
    try:
        v = in_one_transaction(
            settings, lambda session: verify_with_anchors(session, audit.key, lines, node_name(settings)))
    except MissingAuditKey as e:
        print(f"app-admin: {e}", file=sys.stderr)
        return 2
    c = v.chain
    if c.ok:
        print(f"audit log intact: {c.checked} rows, head {c.head}")
    else:
        print(f"audit log broken at seq {c.broken_seq}: {c.reason} ({c.checked} rows verified before it)",
              file=sys.stderr)
    if v.anchors is not None:
        for seq, reason in v.anchors.mismatches:
            print(f"audit log differs from an anchor at seq {seq}: {reason}", file=sys.stderr)
        if v.anchors.checked == 0:
            print(f"no anchors of node {node_name(settings)} in the anchor file", file=sys.stderr)
        elif v.anchors.ok:
            print(f"anchors match: {v.anchors.checked} anchors")
    return 0 if v.ok else 1


def init_module_keys() -> int:
    """The keys of key_provider = pkcs11, made inside the token; the signing public key is printed
    for the peers (exchange.peers[].signing_public_key)."""
    from app.security.pkcs11keys import create_keys

    settings = get_settings()
    if settings.key_provider != "pkcs11":
        print("app-admin: key_provider is not pkcs11: nothing to make", file=sys.stderr)
        return 1
    print(create_keys(settings), end="")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app-admin", description="Operator commands of an installed node.")
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap", help="make the first administrator of a role (install time only)")
    boot.add_argument("--role", required=True, choices=[r.value for r in ADMIN_ROLES])
    boot.add_argument("--username", required=True)
    boot.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input instead of asking")
    rost = sub.add_parser("roster", help="the province's licence roster (道路运政 licensed repair shops)")
    rost_sub = rost.add_subparsers(dest="roster_command", required=True)
    imp = rost_sub.add_parser("import", help="import a roster file (.csv or .xlsx, docs/operations.md)")
    imp.add_argument("file", type=Path)
    imp_rec = sub.add_parser(
        "import", help="import historical repair records (.csv or .jsonl, docs/operations.md); resumable"
    )
    imp_rec.add_argument("file", type=Path)
    whose = imp_rec.add_mutually_exclusive_group(required=True)
    whose.add_argument("--enterprise", metavar="USCC", help="every record is this enterprise's")
    whose.add_argument(
        "--source",
        metavar="NAME",
        help="a migration source (e.g. a city's old platform): each line names its "
        "enterprise in enterprise_uscc",
    )
    imp_rec.add_argument(
        "--rejects", type=Path, help="where to write rejected lines (default FILE.rejects.tsv)"
    )
    imp_rec.add_argument("--batch", type=int, default=500, help="records per transaction (default 500)")
    audit = sub.add_parser("audit", help="the node's audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    vlog = audit_sub.add_parser("verify-log",
                                help="verify the keyed audit chain (and the log host's anchors)")
    vlog.add_argument("--anchors", help="the log host's anchor file, or - for standard input")
    keys = sub.add_parser("keys", help="the node's keys (docs/crypto-plan.md §4)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("init-module", help="make the field, search and signing keys in the PKCS#11 token "
                        "(SoftHSM2; a 密码机's keys come from its vendor's tools) and print the public key")
    args = parser.parse_args(argv)
    if args.command == "keys":
        raise SystemExit(init_module_keys())
    if args.command == "roster":
        raise SystemExit(import_roster(args.file))
    if args.command == "import":
        who = imports.Attribution(args.enterprise, args.source)
        raise SystemExit(import_records(args.file, who, args.rejects, args.batch))
    if args.command == "audit":
        raise SystemExit(verify_log(args.anchors))
    password = read_password(args.password_stdin)
    try:
        made = bootstrap(Role(args.role), args.username, password)
    except AppError as e:
        detail = "; ".join(f"{f.field}: {f.message}" for f in e.fields) if e.fields else e.detail
        raise SystemExit(f"app-admin: {e.code}: {detail}") from None
    # Shown once, to the operator who is this administrator: enrolled in an authenticator app (TOTP).
    print(f"created {args.role} {args.username} (staff id {made.staff_id})")
    print(f"TOTP secret: {made.totp_secret}")
    print(f"TOTP URI: {made.totp_uri}")


if __name__ == "__main__":
    main()
