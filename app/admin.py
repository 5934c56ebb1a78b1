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
"""

import argparse
import getpass
import sys

from app.db.session import Database
from app.domain.errors import AppError
from app.runtime import field_cipher
from app.security.auditlog import AuditLog
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
    audit = AuditLog("sm3" if settings.crypto_suite == "sm" else "sha256")
    try:
        with db.transaction() as session:
            return staff.bootstrap(session, field_cipher(settings), audit, settings.staff_password_min_length,
                                   username, password, role)
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app-admin", description="Operator commands of an installed node.")
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap", help="make the first administrator of a role (install time only)")
    boot.add_argument("--role", required=True, choices=[r.value for r in ADMIN_ROLES])
    boot.add_argument("--username", required=True)
    boot.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input instead of asking")
    args = parser.parse_args(argv)
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
