"""The shop portal's side: staff accounts of an enterprise, its uploads (accepted and rejected), and
the car histories owners have shared with it."""

import re
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    EnterpriseUser,
    HistoryGrant,
    OwnerVehicle,
    RecordVersion,
    RepairRecord,
    UploadRejection,
    Vehicle,
)
from app.domain.clock import now
from app.domain.errors import AppError, FieldError
from app.security.auditlog import AuditLog, Event
from app.security.passwords import hash_secret, verify_secret
from app.security.ratelimit import FailureLimiter
from app.security.rbac import Perm, Principal, require
from app.services import enterprises

_USERNAME = re.compile(r"^[a-z0-9._-]{3,40}$")


def create_user(
    session: Session, enterprise_id: int, username: str, password: str, display_name: str | None
) -> int:
    """Made by the shop's own software credential: the enterprise vouches for its people."""
    if not _USERNAME.match(username):
        raise AppError("USERNAME_FORMAT", 422)
    if len(password) < 8:
        raise AppError("PASSWORD_WEAK", 422)
    user_id = session.scalar(
        pg_insert(EnterpriseUser)
        .values(
            enterprise_id=enterprise_id,
            username=username,
            display_name=display_name,
            password_hash=hash_secret(password),
        )
        .on_conflict_do_nothing(index_elements=["username"])
        .returning(EnterpriseUser.id)
    )
    if user_id is None:
        raise AppError("SHOP_USER_EXISTS", 409)
    return user_id


def authenticate(
    session: Session, limiter: FailureLimiter, username: str, password: str, client_ip: str
) -> EnterpriseUser | None:
    subjects = {f"shop:{username}": 1, f"ip:{client_ip}": 10}
    limiter.check(session, subjects)
    user = session.scalar(select(EnterpriseUser).where(EnterpriseUser.username == username))
    ok = verify_secret(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled_at is not None:
        limiter.record_failure(session, subjects)
        return None
    limiter.clear(session, f"shop:{username}")
    enterprises.require_active(session, user.enterprise_id)  # says why: pending, refused, suspended
    return user


def active_user(session: Session, user_id: int) -> EnterpriseUser:
    user = session.get(EnterpriseUser, user_id)
    if user is None or user.disabled_at is not None:
        raise AppError("TOKEN_INVALID", 401)
    enterprises.require_active(session, user.enterprise_id)  # a suspended enterprise's people too
    return user


def logout(session: Session, audit: AuditLog, who: Principal) -> None:
    """Ends every token of the user (tokens are not stored, so one cannot be ended alone)."""
    session.execute(
        update(EnterpriseUser)
        .where(EnterpriseUser.id == who.id)
        .values(token_generation=EnterpriseUser.token_generation + 1)
    )
    audit.record(
        session,
        Event(
            who.actor_kind,
            str(who.id),
            "shop.logout",
            f"shop_user:{who.id}",
            "success",
            {},
            who.request_id,
            who.client_ip,
        ),
    )


def _settlement_no(raw: Any) -> str | None:
    no = raw.get("settlement_no") if isinstance(raw, dict) else getattr(raw, "settlement_no", None)
    return str(no)[:50] if no else None


def record_rejections(
    session: Session, enterprise_id: int, source: str, rejected: list[tuple[Any, list[FieldError]]]
) -> None:
    """What the shop needs to fix a refused record: its settlement number and the errors, nothing else."""
    if not rejected:
        return
    session.execute(
        insert(UploadRejection),
        [
            {
                "enterprise_id": enterprise_id,
                "settlement_no": _settlement_no(raw),
                "source": source,
                "errors": [e.as_dict() for e in errors],
            }
            for raw, errors in rejected
        ],
    )


def uploads(session: Session, who: Principal, limit: int = 100) -> list[dict[str, Any]]:
    """The shop's records, newest upload first, with how many versions (corrections) each has."""
    require(who, Perm.SHOP_PORTAL)
    rows = session.execute(
        select(
            RepairRecord.id,
            RepairRecord.settlement_no,
            RepairRecord.vin,
            RepairRecord.settle_date,
            RepairRecord.status,
            RepairRecord.current_version,
            RepairRecord.current_received_at,
            RepairRecord.created_at,
        )
        .where(RepairRecord.enterprise_id == who.enterprise_id)
        .order_by(RepairRecord.current_received_at.desc(), RepairRecord.id.desc())
        .limit(limit)
    ).all()
    return [r._asdict() for r in rows]


def rejections(session: Session, who: Principal, limit: int = 100) -> list[dict[str, Any]]:
    require(who, Perm.SHOP_PORTAL)
    rows = session.scalars(
        select(UploadRejection)
        .where(UploadRejection.enterprise_id == who.enterprise_id)
        .order_by(UploadRejection.at.desc(), UploadRejection.id.desc())
        .limit(limit)
    )
    return [
        {"at": r.at, "settlement_no": r.settlement_no, "source": r.source, "errors": r.errors} for r in rows
    ]


def record_versions(session: Session, who: Principal, record_id: int) -> dict[str, Any]:
    require(who, Perm.SHOP_PORTAL)
    head = session.get(RepairRecord, record_id)
    if head is None or head.enterprise_id != who.enterprise_id:
        raise AppError("RECORD_NOT_FOUND", 404)
    versions = session.scalars(
        select(RecordVersion).where(RecordVersion.record_id == record_id).order_by(RecordVersion.version)
    )
    return {
        "record_id": head.id,
        "settlement_no": head.settlement_no,
        "vin": head.vin,
        "status": head.status,
        "versions": [
            {
                "version": v.version,
                "kind": v.kind,
                "source": v.source,
                "received_at": v.received_at,
                "settle_date": v.settle_date,
                "mileage_km": v.mileage_km,
                "fault_description": v.fault_description,
                "total": v.total,
                "withdraw_reason": v.withdraw_reason,
            }
            for v in versions
        ],
    }


def shared_with(session: Session, who: Principal) -> list[dict[str, Any]]:
    """Cars whose owners have authorized this enterprise, with the grant's expiry; no owner data."""
    require(who, Perm.HISTORY_GRANTED)
    rows = session.execute(
        select(
            HistoryGrant.vin,
            func.max(HistoryGrant.expires_at),
            Vehicle.plate_no,
            Vehicle.brand,
            Vehicle.model,
        )
        .join(
            OwnerVehicle,
            and_(OwnerVehicle.owner_id == HistoryGrant.owner_id, OwnerVehicle.vin == HistoryGrant.vin),
        )
        .outerjoin(Vehicle, Vehicle.vin == HistoryGrant.vin)
        .where(
            # as app.services.reads: only grants of the car's proven, current owner count
            OwnerVehicle.full_via.is_not(None),
            OwnerVehicle.ended_at.is_(None),
            HistoryGrant.enterprise_id == who.enterprise_id,
            HistoryGrant.revoked_at.is_(None),
            HistoryGrant.expires_at > now(),
        )
        .group_by(HistoryGrant.vin, Vehicle.plate_no, Vehicle.brand, Vehicle.model)
        .order_by(HistoryGrant.vin)
    ).all()
    return [
        {"vin": vin, "expires_at": exp, "plate_no": plate, "brand": brand, "model": model}
        for vin, exp, plate, brand, model in rows
    ]
