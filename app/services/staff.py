"""Staff accounts, administered under separation of duties; every change lands in the audit log.

The system administrator makes (and resets) accounts but never holds a working credential for one:
it gets a one-time activation code, with which the account's owner sets a password and enrols a
TOTP at first login (app.security.staffauth). A reset account also loses its role, and the security
administrator gives roles only to accounts whose owner has done that first login, so making or
resetting an account and giving it power takes two administrators.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Region, StaffAccount
from app.domain.clock import now
from app.domain.errors import AppError
from app.security.auditlog import AuditLog, Event
from app.security.fieldcrypt import FieldCipher
from app.security.otp import OtpAlgorithm, provisioning_uri
from app.security.passwords import hash_secret
from app.security.rbac import Perm, Principal, Role, check_role_change, require
from app.security.staffauth import (
    ISSUER,
    TOTP_FIELD,
    check_password_policy,
    new_enrolment_secret,
    new_totp_secret,
    revoke_all,
)

_USERNAME = re.compile(r"^[a-z0-9._-]{3,40}$")


@dataclass(frozen=True)
class NewStaff:
    """An operator-bootstrapped administrator: the operator is that person, so sees the secret."""

    staff_id: int
    totp_secret: str  # shown once, for the authenticator app
    totp_uri: str


@dataclass(frozen=True)
class Activation:
    """What the system administrator gets for a new or reset account: a code for its first login only."""

    staff_id: int
    activation_code: str
    expires_at: datetime


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


def _insert(session: Session, username: str, **values: object) -> int:
    if not _USERNAME.match(username):
        raise AppError("USERNAME_FORMAT", 422)
    staff_id = session.scalar(
        pg_insert(StaffAccount)
        .values(username=username, **values)
        .on_conflict_do_nothing(index_elements=["username"])
        .returning(StaffAccount.id)
    )
    if staff_id is None:
        raise AppError("STAFF_EXISTS", 409)
    return staff_id


def _unenrolled(code_seconds: int) -> tuple[str, dict[str, object]]:
    """An activation code and the columns of an account waiting for its owner's first login: a
    password nobody knows (a real argon2 hash, so login does the same work as for any account), no
    TOTP, no role."""
    code, code_hash = new_enrolment_secret()
    return code, {
        "password_hash": hash_secret(new_enrolment_secret()[0]),
        "totp_enc": None,
        "totp_last_step": 0,  # a new secret's codes start afresh
        "enrolled_at": None,
        "enrol_secret_hash": code_hash,
        "enrol_expires_at": now() + timedelta(seconds=code_seconds),
        "role": None,
        "region_code": None,
    }


def create(
    session: Session,
    audit: AuditLog,
    actor: Principal,
    username: str,
    display_name: str | None,
    code_seconds: int,
) -> Activation:
    """The system administrator creates accounts without a role and without a usable credential; the
    owner enrols, then the security administrator gives the role."""
    require(actor, Perm.STAFF_MANAGE)
    code, values = _unenrolled(code_seconds)
    staff_id = _insert(session, username, display_name=display_name, **values)
    audit.record(session, _admin_event(actor, "staff.create", staff_id, username=username))
    return Activation(staff_id, code, values["enrol_expires_at"])  # type: ignore[arg-type]


def reset(
    session: Session, audit: AuditLog, actor: Principal, staff_id: int, code_seconds: int
) -> Activation:
    """A forgotten password or a lost authenticator: the account goes back to waiting for its owner's
    first login, with a new activation code, no sessions and no role (the security administrator
    gives it again once the owner has enrolled)."""
    require(actor, Perm.STAFF_MANAGE)
    if staff_id == actor.id:
        raise AppError("FORBIDDEN", 403)
    acct = _account(session, staff_id)
    before = acct.role
    code, values = _unenrolled(code_seconds)
    for column, value in values.items():
        setattr(acct, column, value)
    acct.failed_logins, acct.locked_until = 0, None
    revoke_all(session, staff_id)
    audit.record(session, _admin_event(actor, "staff.reset", staff_id, role_before=before))
    return Activation(staff_id, code, values["enrol_expires_at"])  # type: ignore[arg-type]


def bootstrap(
    session: Session,
    cipher: FieldCipher,
    audit: AuditLog,
    min_length: int,
    username: str,
    password: str,
    role: Role,
    otp_algorithm: OtpAlgorithm = "rfc6238",
) -> NewStaff:
    """The first administrator of a role, made by the operator at install time (there is no one to
    grant it yet); refused once an account holds that role. The operator at the host is that
    administrator, so chooses the password and gets the TOTP secret directly: no first login."""
    if role not in {Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN}:
        raise AppError("ROLE_INVALID", 422)
    if session.scalar(select(StaffAccount.id).where(StaffAccount.role == role).limit(1)) is not None:
        raise AppError("STAFF_EXISTS", 409, f"已有{role.value}账户，后续账户请由管理员创建")
    check_password_policy(password, username, min_length)
    secret = new_totp_secret()
    staff_id = _insert(
        session,
        username,
        password_hash=hash_secret(password),
        totp_enc=cipher.encrypt(TOTP_FIELD, secret),
        role=role,
        enrolled_at=now(),
    )
    made = NewStaff(staff_id, secret, provisioning_uri(secret, username, ISSUER, otp_algorithm))
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
    if acct.enrolled_at is None:
        # the person must have set their own credentials first: so an account the system
        # administrator made or reset, and could have enrolled itself, is never given power unseen
        raise AppError("ENROLMENT_PENDING", 409)
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
