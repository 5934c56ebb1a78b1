"""`app-admin`: the operator's commands on an installed node, run with the app's settings (on a
deployed host through `pbox-admin`, which roles/app installs).

`bootstrap` makes the first system, security or audit administrator at install time: there is no
built-in account, and no one yet to grant the role (GB/T 22239 8.1.4.2 b, c). It is refused once
an account holds that role; later accounts are made by the system administrator in the portal.

`audit verify-log` verifies the node's keyed audit chain with the node's own key and, given the
central log host's anchor file (`--anchors FILE`, or `-` for standard input), checks every anchor of
this node against the chain (docs/operations.md).
"""

import argparse
import getpass
import sys
from pathlib import Path

from app.db.session import Database
from app.domain.errors import AppError
from app.runtime import audit_log, field_cipher, node_name
from app.security.auditlog import MissingAuditKey, verify_with_anchors
from app.security.rbac import Role
from app.services import staff
from app.settings import get_settings

ADMIN_ROLES = (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("app-admin: the two passwords differ")
    return first


def bootstrap(role: Role, username: str, password: str) -> staff.NewStaff:
    settings = get_settings()
    db = Database(settings.database_url, pool_size=1, max_overflow=0)
    audit = audit_log(settings)
    try:
        with db.transaction() as session:
            return staff.bootstrap(session, field_cipher(settings), audit, settings.staff_password_min_length,
                                   username, password, role)
    finally:
        db.dispose()


def verify_log(anchors: str | None) -> int:
    """Print the verification; 0 intact, 1 broken or an anchor differs, 2 cannot check."""
    settings = get_settings()
    audit = audit_log(settings)
    lines = None
    if anchors is not None:
        lines = sys.stdin.readlines() if anchors == "-" else Path(anchors).read_text().splitlines()
    db = Database(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with db.transaction() as session:
            v = verify_with_anchors(session, audit.key, lines, node_name(settings))
    except MissingAuditKey as e:
        print(f"app-admin: {e}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app-admin", description="Operator commands of an installed node.")
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap", help="make the first administrator of a role (install time only)")
    boot.add_argument("--role", required=True, choices=[r.value for r in ADMIN_ROLES])
    boot.add_argument("--username", required=True)
    boot.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input instead of asking")
    audit = sub.add_parser("audit", help="the node's audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    vlog = audit_sub.add_parser("verify-log",
                                help="verify the keyed audit chain (and the log host's anchors)")
    vlog.add_argument("--anchors", help="the log host's anchor file, or - for standard input")
    args = parser.parse_args(argv)
    if args.command == "audit":
        raise SystemExit(verify_log(args.anchors))
    password = read_password(args.password_stdin)
    try:
        made = bootstrap(Role(args.role), args.username, password)
    except AppError as e:
        detail = "; ".join(f"{f.field}: {f.message}" for f in e.fields) if e.fields else e.detail
        raise SystemExit(f"app-admin: {e.code}: {detail}") from None
    # Shown once: the administrator enrols it in an authenticator app (TOTP, second factor).
    print(f"created {args.role} {args.username} (staff id {made.staff_id})")
    print(f"TOTP secret: {made.totp_secret}")
    print(f"TOTP URI: {made.totp_uri}")


if __name__ == "__main__":
    main()
