"""Staff accounts, administered under separation of duties; every change lands in the audit log."""

import re
from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Region, StaffAccount
from app.domain.clock import now
from app.domain.errors import AppError
from app.security.auditlog import AuditLog, Event
from app.security.fieldcrypt import FieldCipher
from app.security.passwords import hash_secret
from app.security.rbac import Perm, Principal, Role, check_role_change, require
from app.security.staffauth import TOTP_FIELD, check_password_policy, new_totp_secret, revoke_all

_USERNAME = re.compile(r"^[a-z0-9._-]{3,40}$")
ISSUER = "汽车维修电子健康档案"


@dataclass(frozen=True)
class NewStaff:
    staff_id: int
    totp_secret: str  # shown once, for the authenticator app
    totp_uri: str


def _admin_event(actor: Principal, action: str, target: int | str, **detail: str | None) -> Event:
    return Event(
        actor.actor_kind,
        str(actor.id),
        action,
        f"staff:{target}",
        "success",
        detail,
        actor.request_id,
        actor.client_ip,
    )


def _insert(
    session: Session,
    cipher: FieldCipher,
    min_length: int,
    username: str,
    password: str,
    display_name: str | None,
    role: Role | None,
    region_code: str | None,
) -> NewStaff:
    if not _USERNAME.match(username):
        raise AppError("USERNAME_FORMAT", 422)
    check_password_policy(password, username, min_length)
    secret = new_totp_secret()
    staff_id = session.scalar(
        pg_insert(StaffAccount)
        .values(
            username=username,
            display_name=display_name,
            password_hash=hash_secret(password),
            totp_enc=cipher.encrypt(TOTP_FIELD, secret),
            role=role,
            region_code=region_code,
        )
        .on_conflict_do_nothing(index_elements=["username"])
        .returning(StaffAccount.id)
    )
    if staff_id is None:
        raise AppError("STAFF_EXISTS", 409)
    return NewStaff(staff_id, secret, pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER))


def create(
    session: Session,
    cipher: FieldCipher,
    audit: AuditLog,
    min_length: int,
    actor: Principal,
    username: str,
    password: str,
    display_name: str | None,
) -> NewStaff:
    """The system administrator creates accounts without a role; the security administrator gives one."""
    require(actor, Perm.STAFF_MANAGE)
    made = _insert(session, cipher, min_length, username, password, display_name, None, None)
    audit.record(session, _admin_event(actor, "staff.create", made.staff_id, username=username))
    return made


def bootstrap(
    session: Session,
    cipher: FieldCipher,
    audit: AuditLog,
    min_length: int,
    username: str,
    password: str,
    role: Role,
) -> NewStaff:
    """The first administrator of a role, made by the operator at install time (there is no one to
    grant it yet); refused once an account holds that role."""
    if role not in {Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN}:
        raise AppError("ROLE_INVALID", 422)
    if session.scalar(select(StaffAccount.id).where(StaffAccount.role == role).limit(1)) is not None:
        raise AppError("STAFF_EXISTS", 409, f"已有{role.value}账户，后续账户请由管理员创建")
    made = _insert(session, cipher, min_length, username, password, None, role, None)
    audit.record(
        session,
        Event(
            "operator", "install", "staff.bootstrap", f"staff:{made.staff_id}", detail={"role": role.value}
        ),
    )
    return made


def _account(session: Session, staff_id: int) -> StaffAccount:
    acct = session.get(StaffAccount, staff_id, with_for_update=True)
    if acct is None:
        raise AppError("STAFF_NOT_FOUND", 404)
    return acct


def assign_role(
    session: Session, audit: AuditLog, actor: Principal, staff_id: int, role: Role, region_code: str | None
) -> None:
    check_role_change(actor, staff_id, role, region_code)
    if region_code is not None and session.get(Region, region_code) is None:
        raise AppError("REGION_UNKNOWN", 422)
    acct = _account(session, staff_id)
    before = acct.role
    acct.role, acct.region_code = role, region_code
    revoke_all(session, staff_id)  # sessions carry the old role's trust: start fresh
    audit.record(
        session,
        _admin_event(actor, "staff.role", staff_id, before=before, after=role.value, region=region_code),
    )


def disable(session: Session, audit: AuditLog, actor: Principal, staff_id: int) -> None:
    require(actor, Perm.STAFF_MANAGE)
    if staff_id == actor.id:
        raise AppError("FORBIDDEN", 403)
    acct = _account(session, staff_id)
    acct.disabled_at = acct.disabled_at or now()
    revoke_all(session, staff_id)
    audit.record(session, _admin_event(actor, "staff.disable", staff_id))


def revoke_sessions(session: Session, audit: AuditLog, actor: Principal, staff_id: int) -> int:
    require(actor, Perm.SESSION_REVOKE)
    _account(session, staff_id)
    n = revoke_all(session, staff_id)
    audit.record(session, _admin_event(actor, "staff.revoke_sessions", staff_id, count=str(n)))
    return n
