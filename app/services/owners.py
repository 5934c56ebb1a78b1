"""Owner accounts, the binding of a car by a query code from one of its settlement lists, and the
owner's time-limited authorizations for enterprises to read the car's history."""

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    Enterprise,
    HistoryGrant,
    OwnerAccount,
    OwnerVehicle,
    RepairRecord,
    Vehicle,
    VehicleClaim,
)
from app.domain.clock import now
from app.domain.errors import AppError
from app.domain.idcard import valid_id_number
from app.security.auditlog import AuditLog, Event
from app.security.fieldcrypt import FieldCipher
from app.security.passwords import hash_secret, verify_secret
from app.security.querycodes import QueryCodes
from app.security.ratelimit import FailureLimiter
from app.security.rbac import Perm, Principal, require

_PHONE = re.compile(r"^1[3-9]\d{9}$")


def register(
    session: Session,
    cipher: FieldCipher,
    phone: str,
    password: str,
    name: str | None,
    id_number: str | None = None,
) -> int:
    """Personal fields are stored only encrypted, with keyed hashes of phone and ID number for lookups."""
    if not _PHONE.match(phone):
        raise AppError("PHONE_FORMAT", 422)
    if len(password) < 8:
        raise AppError("PASSWORD_WEAK", 422)
    if id_number is not None:
        id_number = id_number.upper()
        if not valid_id_number(id_number):
            raise AppError("ID_NUMBER_FORMAT", 422)
        taken = session.scalar(
            select(OwnerAccount.id).where(
                OwnerAccount.id_number_hash == cipher.search_hash("owner.id_number", id_number)
            )
        )
        if taken is not None:
            raise AppError("ID_NUMBER_EXISTS", 409)
    owner_id = session.scalar(
        pg_insert(OwnerAccount)
        .values(
            phone_hash=cipher.search_hash("owner.phone", phone),
            phone_enc=cipher.encrypt("owner.phone", phone),
            name_enc=cipher.encrypt("owner.name", name) if name else None,
            id_number_hash=cipher.search_hash("owner.id_number", id_number) if id_number else None,
            id_number_enc=cipher.encrypt("owner.id_number", id_number) if id_number else None,
            password_hash=hash_secret(password),
        )
        .on_conflict_do_nothing(index_elements=["phone_hash"])
        .returning(OwnerAccount.id)
    )
    if owner_id is None:
        raise AppError("OWNER_EXISTS", 409)
    return owner_id


def authenticate(
    session: Session, cipher: FieldCipher, limiter: FailureLimiter, phone: str, password: str, client_ip: str
) -> int | None:
    subjects = {f"owner:{phone}": 1, f"ip:{client_ip}": 10}
    limiter.check(session, subjects)
    acct = session.scalar(
        select(OwnerAccount).where(OwnerAccount.phone_hash == cipher.search_hash("owner.phone", phone))
    )
    if acct is None or not verify_secret(acct.password_hash, password):
        limiter.record_failure(session, subjects)
        return None
    limiter.clear(session, f"owner:{phone}")
    return acct.id


def token_generation(session: Session, owner_id: int) -> int:
    """What a new token of this account carries (app.security.tokens)."""
    gen = session.scalar(
        select(OwnerAccount.token_generation).where(
            OwnerAccount.id == owner_id, OwnerAccount.closed_at.is_(None)
        )
    )
    if gen is None:
        raise AppError("TOKEN_INVALID", 401)
    return gen


def check_token(session: Session, owner_id: int, generation: int) -> None:
    """A token issued before the account's last logout or password change, or of a closed account,
    no longer works."""
    acct = session.get(OwnerAccount, owner_id)
    if acct is None or acct.closed_at is not None:
        raise AppError("TOKEN_INVALID", 401)
    if generation != acct.token_generation:
        raise AppError("SESSION_REVOKED", 401)


def _audit(
    audit: AuditLog, session: Session, who: Principal, action: str, outcome: str, **detail: str
) -> None:
    event = Event(
        who.actor_kind, str(who.id), action, f"owner:{who.id}", outcome, detail, who.request_id, who.client_ip
    )
    audit.record(session, event)


def logout(session: Session, audit: AuditLog, who: Principal) -> None:
    """Ends every token of the account (tokens are not stored, so one cannot be ended alone)."""
    session.execute(
        update(OwnerAccount)
        .where(OwnerAccount.id == who.id)
        .values(token_generation=OwnerAccount.token_generation + 1)
    )
    _audit(audit, session, who, "owner.logout", "success")


def _check_current(
    session: Session, limiter: FailureLimiter, who: Principal, password: str
) -> tuple[OwnerAccount | None, AppError | None]:
    """The account if `password` is its current one; a wrong one counts towards the owner's limit
    (the caller commits the failure before refusing)."""
    subjects = {f"owner-id:{who.id}": 1}
    limiter.check(session, subjects)
    acct = session.get(OwnerAccount, who.id, with_for_update=True)
    if acct is None or acct.closed_at is not None:
        return None, AppError("TOKEN_INVALID", 401)
    if not verify_secret(acct.password_hash, password):
        limiter.record_failure(session, subjects)
        return None, AppError("PASSWORD_WRONG", 403)
    return acct, None


def change_password(
    session: Session, limiter: FailureLimiter, audit: AuditLog, who: Principal, current: str, new: str
) -> tuple[int | None, AppError | None]:
    """The new token generation on success (every other session ends), or the refusal, audited
    either way; returned rather than raised so a wrong password's failure count is committed."""
    acct, error = _check_current(session, limiter, who, current)
    if acct is not None:
        if len(new) < 8:
            error = AppError("PASSWORD_WEAK", 422)
        elif verify_secret(acct.password_hash, new):
            error = AppError("PASSWORD_REUSED", 422)
        else:
            acct.password_hash = hash_secret(new)
            acct.token_generation += 1
    _audit(
        audit,
        session,
        who,
        "owner.password_change",
        "failure" if error else "success",
        reason=error.code if error else "ok",
    )
    return (None if error or acct is None else acct.token_generation), error


def close_account(
    session: Session, limiter: FailureLimiter, audit: AuditLog, who: Principal, password: str
) -> tuple[list[str], AppError | None]:
    """个人信息保护法 第四十七条: the owner's personal data is erased when the account is closed.

    Erased: phone, name and ID number (ciphertext and keyed hashes), the password, the bindings of
    cars, the grants to enterprises (ended), pending 行驶证 claims, and every claim's photo and plate
    (a reviewed claim keeps only its review). Kept: the repair records (the shops' records, which
    the rules require to be kept), ratings and complaints, which keep pointing at the emptied
    account row and so at nobody. Returns the claim photos' object keys, for the caller to delete
    from the object store once this is committed."""
    acct, error = _check_current(session, limiter, who, password)
    if acct is None:
        _audit(audit, session, who, "owner.close", "failure", reason=error.code if error else "-")
        return [], error
    t = now()
    acct.phone_hash = acct.phone_enc = acct.name_enc = acct.id_number_hash = acct.id_number_enc = None
    acct.password_hash = "!"  # noqa: S105 - not an argon2 hash: nothing verifies against it
    acct.token_generation += 1
    acct.closed_at = t
    session.execute(delete(OwnerVehicle).where(OwnerVehicle.owner_id == who.id))
    session.execute(
        update(HistoryGrant)
        .where(HistoryGrant.owner_id == who.id, HistoryGrant.revoked_at.is_(None))
        .values(revoked_at=t)
    )
    photos = list(session.scalars(select(VehicleClaim.object_key).where(VehicleClaim.owner_id == who.id)))
    session.execute(
        delete(VehicleClaim).where(VehicleClaim.owner_id == who.id, VehicleClaim.status == "pending")
    )
    session.execute(update(VehicleClaim).where(VehicleClaim.owner_id == who.id).values(plate_no=None))
    _audit(audit, session, who, "owner.close", "success")
    return [k for k in photos if k], None


def bind_vehicle(
    session: Session, limiter: FailureLimiter, codes: QueryCodes, owner_id: int, vin: str, query_code: str
) -> bool:
    """False on a wrong code, which is recorded as a failure (the caller must commit it): codes are
    short enough that guessing has to be throttled."""
    subjects = {f"bind:{owner_id}": 1}
    limiter.check(session, subjects)
    record_ids = session.scalars(select(RepairRecord.id).where(RepairRecord.vin == vin))
    match = next((rid for rid in record_ids if codes.matches(rid, query_code)), None)
    if match is None:
        limiter.record_failure(session, subjects)
        return False
    session.execute(
        pg_insert(OwnerVehicle)
        .values(owner_id=owner_id, vin=vin, via_record_id=match)
        .on_conflict_do_nothing()
    )
    return True


def owns(session: Session, owner_id: int, vin: str) -> bool:
    return session.get(OwnerVehicle, (owner_id, vin)) is not None


def vehicles(session: Session, owner_id: int) -> list[str]:
    return list(
        session.scalars(
            select(OwnerVehicle.vin)
            .where(OwnerVehicle.owner_id == owner_id)
            .order_by(OwnerVehicle.verified_at)
        )
    )


def grant(
    session: Session, audit: AuditLog, who: Principal, vin: str, uscc: str, days: int, max_days: int
) -> tuple[int, datetime]:
    """The owner lets one enterprise read this car's history until the grant expires or is revoked."""
    require(who, Perm.GRANT_MANAGE)
    if not 1 <= days <= max_days:
        raise AppError("GRANT_DAYS_INVALID", 422)
    if not owns(session, who.id, vin):
        raise AppError("VEHICLE_NOT_BOUND", 403)
    ent_id = session.scalar(select(Enterprise.id).where(Enterprise.uscc == uscc))
    if ent_id is None:
        raise AppError("ENTERPRISE_NOT_FOUND", 404)
    expires = now() + timedelta(days=days)
    grant_id = session.scalar(
        insert(HistoryGrant)
        .values(owner_id=who.id, vin=vin, enterprise_id=ent_id, expires_at=expires)
        .returning(HistoryGrant.id)
    )
    assert grant_id is not None
    audit.record(
        session,
        Event(
            who.actor_kind,
            str(who.id),
            "grant.create",
            vin,
            "success",
            {"enterprise": uscc, "days": days},
            who.request_id,
            who.client_ip,
        ),
    )
    return grant_id, expires


def revoke_grant(session: Session, audit: AuditLog, who: Principal, grant_id: int) -> None:
    require(who, Perm.GRANT_MANAGE)
    g = session.get(HistoryGrant, grant_id)
    if g is None or g.owner_id != who.id:
        raise AppError("GRANT_NOT_FOUND", 404)
    g.revoked_at = g.revoked_at or now()
    audit.record(
        session,
        Event(
            who.actor_kind,
            str(who.id),
            "grant.revoke",
            g.vin,
            "success",
            {"grant": grant_id},
            who.request_id,
            who.client_ip,
        ),
    )


def grants_of_owner(session: Session, who: Principal) -> list[dict[str, Any]]:
    """An owner's grants, live and past, with the enterprise each was given to."""
    rows = session.execute(
        select(HistoryGrant, Enterprise.name, Enterprise.uscc)
        .join(Enterprise, Enterprise.id == HistoryGrant.enterprise_id)
        .where(HistoryGrant.owner_id == who.id)
        .order_by(HistoryGrant.created_at.desc(), HistoryGrant.id.desc())
    ).all()
    t: datetime = now()
    return [
        {
            "grant_id": g.id,
            "vin": g.vin,
            "enterprise_name": name,
            "enterprise_uscc": uscc,
            "created_at": g.created_at,
            "expires_at": g.expires_at,
            "revoked_at": g.revoked_at,
            "active": g.revoked_at is None and g.expires_at > t,
        }
        for g, name, uscc in rows
    ]


def vehicle_summaries(session: Session, owner_id: int) -> list[dict[str, Any]]:
    """The owner's verified cars with what is known of them (plate, brand, model)."""
    rows = session.execute(
        select(OwnerVehicle.vin, OwnerVehicle.verified_at, Vehicle.plate_no, Vehicle.brand, Vehicle.model)
        .outerjoin(Vehicle, Vehicle.vin == OwnerVehicle.vin)
        .where(OwnerVehicle.owner_id == owner_id)
        .order_by(OwnerVehicle.verified_at)
    ).all()
    return [r._asdict() for r in rows]
