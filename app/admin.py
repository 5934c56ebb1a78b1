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

`audit verify-log` verifies the node's keyed audit chain with the node's own key and, given the
central log host's anchor file (`--anchors FILE`, or `-` for standard input), checks every anchor of
this node against the chain (docs/operations.md).
"""

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from app.db.session import Database
from app.domain.errors import AppError
from app.runtime import audit_log, field_cipher, node_name
from app.security.auditlog import MissingAuditKey, verify_with_anchors
from app.security.rbac import Role
from app.services import roster, staff
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
