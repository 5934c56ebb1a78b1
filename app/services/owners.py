"""Owner accounts and the binding of a car to an owner by a query code from one of its settlement lists."""

import re

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import OwnerAccount, OwnerVehicle, RepairRecord
from app.domain.errors import AppError
from app.security.passwords import hash_secret, verify_secret
from app.security.querycodes import QueryCodes
from app.security.ratelimit import FailureLimiter

_PHONE = re.compile(r"^1[3-9]\d{9}$")


def register(session: Session, phone: str, password: str, display_name: str | None) -> int:
    if not _PHONE.match(phone):
        raise AppError("PHONE_FORMAT", 422)
    if len(password) < 8:
        raise AppError("PASSWORD_WEAK", 422)
    owner_id = session.scalar(
        pg_insert(OwnerAccount)
        .values(phone=phone, password_hash=hash_secret(password), display_name=display_name)
        .on_conflict_do_nothing(index_elements=["phone"])
        .returning(OwnerAccount.id)
    )
    if owner_id is None:
        raise AppError("OWNER_EXISTS", 409)
    return owner_id


def authenticate(
    session: Session, limiter: FailureLimiter, phone: str, password: str, client_ip: str
) -> int | None:
    subjects = {f"owner:{phone}": 1, f"ip:{client_ip}": 10}
    limiter.check(session, subjects)
    acct = session.scalar(select(OwnerAccount).where(OwnerAccount.phone == phone))
    if acct is None or not verify_secret(acct.password_hash, password):
        limiter.record_failure(session, subjects)
        return None
    limiter.clear(session, f"owner:{phone}")
    return acct.id


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
