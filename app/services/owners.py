"""Owner accounts, the binding of cars, and the owner's time-limited authorizations for enterprises to
read a car's history.

Binding rules (issue 15, docs/security-baseline.md 威胁模型): a query code is printed by one shop,
which can mint codes for any VIN, so a code binds only that shop's records of the car. The whole
history needs a proof no shop holds: the vehicle registration check (app.security.vehicle_registry)
or a regulator's approval of a 行驶证 photo (app.services.claims). Such a proof ends every other
owner's binding of the car (the car was sold) and tells them in their account. Only a whole-history
owner may authorize enterprises to read the car's file, and rate repairs.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import (
    Enterprise,
    HistoryGrant,
    OwnerAccount,
    OwnerNotification,
    OwnerVehicle,
    OwnerVehicleScope,
    RepairRecord,
    Vehicle,
    VehicleClaim,
)
from app.db.session import Database
from app.domain.clock import now
from app.domain.errors import AppError
from app.domain.idcard import valid_id_number
from app.domain.plate import plate_error
from app.domain.vin import vin_error
from app.security.auditlog import AuditLog, Event
from app.security.fieldcrypt import FieldCipher
from app.security.passwords import hash_secret, verify_secret
from app.security.querycodes import QueryCodes
from app.security.ratelimit import FailureLimiter
from app.security.rbac import Perm, Principal, require
from app.security.vehicle_registry import Answer, Query, VehicleRegistry

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
    phone_hash = cipher.search_hash("owner.phone", phone)
    subjects = {_login_subject(phone_hash): 1, f"ip:{client_ip}": 10}
    limiter.check(session, subjects)
    acct = session.scalar(select(OwnerAccount).where(OwnerAccount.phone_hash == phone_hash))
    if acct is None or not verify_secret(acct.password_hash, password):
        limiter.record_failure(session, subjects)
        return None
    limiter.clear(session, _login_subject(phone_hash))
    return acct.id


def _login_subject(phone_hash: bytes) -> str:
    """The rate limiter's name for an owner login: the phone's keyed hash, never the number itself
    (the limiter's table lies outside the personal schema)."""
    return "owner:" + phone_hash.hex()


def login(
    session: Session,
    cipher: FieldCipher,
    limiter: FailureLimiter,
    audit: AuditLog,
    phone: str,
    password: str,
    client_ip: str,
    request_id: str | None,
    detail: dict[str, Any],
) -> tuple[int | None, int]:
    """Sign-in (API and portal), audited either way: the account and its token generation, or None.
    The phone number is personal data: the log names the account, or only the outcome."""
    owner_id = authenticate(session, cipher, limiter, phone, password, client_ip)
    gen = token_generation(session, owner_id) if owner_id else 0
    audit.record(
        session,
        Event(
            "owner",
            str(owner_id or "-"),
            "owner.login",
            f"owner:{owner_id or '-'}",
            "success" if owner_id else "failure",
            detail,
            request_id,
            client_ip,
        ),
    )
    return owner_id, gen


@dataclass(frozen=True)
class Access:
    """What an owner sees of a car: the whole history, or the records of the enterprises whose
    query codes they hold (each shop's codes reveal that shop's records and nothing else)."""

    full: bool
    enterprise_ids: frozenset[int]

    def sees(self, enterprise_id: int) -> bool:
        return self.full or enterprise_id in self.enterprise_ids


def access(session: Session, owner_id: int, vin: str) -> Access | None:
    """None when the owner has no live binding of the car (never bound, or ended by a transfer)."""
    ov = session.get(OwnerVehicle, (owner_id, vin))
    if ov is None or ov.ended_at is not None:
        return None
    scoped = session.scalars(
        select(OwnerVehicleScope.enterprise_id).where(
            OwnerVehicleScope.owner_id == owner_id, OwnerVehicleScope.vin == vin
        )
    )
    return Access(ov.full_via is not None, frozenset(scoped))


def owns(session: Session, owner_id: int, vin: str) -> bool:
    return access(session, owner_id, vin) is not None


def _lock_vin(session: Session, vin: str) -> None:
    """Bindings of one car change one at a time (two owners proving it at once must not both win)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext("owner_vehicle:" + vin))))


def _transferred_at(session: Session, owner_id: int, vin: str) -> datetime | None:
    """When another owner proved the car's whole history (the car changed hands then, as far as
    this system knows); None if nobody else holds a live full binding."""
    return session.scalar(
        select(func.max(OwnerVehicle.full_at)).where(
            OwnerVehicle.vin == vin,
            OwnerVehicle.owner_id != owner_id,
            OwnerVehicle.ended_at.is_(None),
            OwnerVehicle.full_via.is_not(None),
        )
    )


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
    if acct.phone_hash is not None:
        limiter.clear(session, _login_subject(acct.phone_hash))
    acct.phone_hash = acct.phone_enc = acct.name_enc = acct.id_number_hash = acct.id_number_enc = None
    acct.password_hash = "!"  # noqa: S105 - not an argon2 hash: nothing verifies against it
    acct.token_generation += 1
    acct.closed_at = t
    session.execute(delete(OwnerVehicle).where(OwnerVehicle.owner_id == who.id))  # scopes cascade
    session.execute(delete(OwnerNotification).where(OwnerNotification.owner_id == who.id))
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
    """Bind the car's records of the enterprise that printed the code. False on a wrong code, which
    is recorded as a failure (the caller must commit it): codes are short enough that guessing has to
    be throttled. A code of a repair uploaded before another owner proved the car (the car was sold
    since) binds nothing: the previous owner's old settlement lists do not reopen the file."""
    subjects = {f"bind:{owner_id}": 1}
    limiter.check(session, subjects)
    rows = session.execute(
        select(RepairRecord.id, RepairRecord.enterprise_id, RepairRecord.created_at).where(
            RepairRecord.vin == vin
        )
    ).all()
    match = next((r for r in rows if codes.matches(r.id, query_code)), None)
    if match is None:
        limiter.record_failure(session, subjects)
        return False
    _lock_vin(session, vin)
    sold_at = _transferred_at(session, owner_id, vin)
    if sold_at is not None and match.created_at < sold_at:
        raise AppError("QUERY_CODE_SUPERSEDED", 403)
    ov = session.get(OwnerVehicle, (owner_id, vin), with_for_update=True)
    if ov is None:
        session.add(OwnerVehicle(owner_id=owner_id, vin=vin, via_record_id=match.id))
        session.flush()
    elif ov.ended_at is not None:  # bound again after a transfer: nothing of the old binding carries over
        session.execute(
            delete(OwnerVehicleScope).where(
                OwnerVehicleScope.owner_id == owner_id, OwnerVehicleScope.vin == vin
            )
        )
        ov.via_record_id, ov.via_claim_id, ov.verified_at = match.id, None, now()
        ov.full_via = ov.full_at = ov.ended_at = ov.ended_reason = None
        session.flush()
    session.execute(
        pg_insert(OwnerVehicleScope)
        .values(owner_id=owner_id, vin=vin, enterprise_id=match.enterprise_id, via_record_id=match.id)
        .on_conflict_do_nothing()
    )
    return True


def prove_full(
    session: Session, audit: AuditLog, who: Principal, owner_id: int, vin: str, via: str, claim_id: int | None
) -> list[int]:
    """The owner proved the car's whole history (registry check or approved claim): bind it so, end
    every other owner's binding of the car (it was sold), revoke their grants, tell them. Returns
    the owners whose bindings ended."""
    _lock_vin(session, vin)
    t = now()
    session.execute(
        pg_insert(OwnerVehicle)
        .values(owner_id=owner_id, vin=vin, full_via=via, full_at=t, via_claim_id=claim_id)
        .on_conflict_do_update(
            index_elements=["owner_id", "vin"],
            set_={
                "full_via": via,
                "full_at": t,
                "via_claim_id": func.coalesce(claim_id, OwnerVehicle.via_claim_id),
                "ended_at": None,
                "ended_reason": None,
            },
        )
    )
    ended = list(
        session.scalars(
            update(OwnerVehicle)
            .where(
                OwnerVehicle.vin == vin, OwnerVehicle.owner_id != owner_id, OwnerVehicle.ended_at.is_(None)
            )
            .values(ended_at=t, ended_reason="transfer")
            .returning(OwnerVehicle.owner_id)
        )
    )
    if ended:
        session.execute(
            update(HistoryGrant)
            .where(
                HistoryGrant.vin == vin, HistoryGrant.owner_id.in_(ended), HistoryGrant.revoked_at.is_(None)
            )
            .values(revoked_at=t)
        )
        session.execute(
            insert(OwnerNotification), [{"owner_id": o, "kind": "binding_ended", "vin": vin} for o in ended]
        )
    audit.record(
        session,
        Event(
            who.actor_kind,
            str(who.id),
            "vehicle.full_binding",
            vin,
            "success",
            {"owner": owner_id, "via": via, "ended_bindings": len(ended)},
            who.request_id,
            who.client_ip,
        ),
    )
    return ended


def verify_full(
    db: Database,
    registry: VehicleRegistry | None,
    limiter: FailureLimiter,
    cipher: FieldCipher,
    audit: AuditLog,
    who: Principal,
    vin: str,
    plate_no: str,
    owner_name: str,
    id_number: str,
) -> None:
    """Ask the vehicle registration data whether this owner (name and ID number, which then stay on
    the account) is the registered owner of the car. A match binds the whole history; no match is a
    throttled failure (per account and per car: the answer is an oracle on personal data), refused
    (REGISTRY_NO_MATCH, or REGISTRY_UNAVAILABLE) only after its audit record and failure count are
    committed. The registry is asked between two transactions, so a slow gateway holds no database
    connection."""
    with db.transaction() as s:
        query = _verification_query(s, registry, limiter, cipher, who, vin, plate_no, owner_name, id_number)
    if query is None:  # proven before
        return
    assert registry is not None
    answer = registry.check(query, who.request_id)
    with db.transaction() as s:
        audit.record(
            s,
            Event(
                who.actor_kind,
                str(who.id),
                "vehicle.registry_check",
                query.vin,
                "success" if answer == Answer.MATCH else "failure",
                {"answer": answer.value},
                who.request_id,
                who.client_ip,
            ),
        )
        if answer == Answer.NO_MATCH:
            limiter.record_failure(s, _registry_subjects(who, query.vin))
        if answer == Answer.MATCH:
            acct = s.get(OwnerAccount, who.id, with_for_update=True)
            assert acct is not None
            if acct.id_number_hash is None:  # proven now: one account per ID number from here on
                id_hash = cipher.search_hash("owner.id_number", query.id_number)
                if s.scalar(select(OwnerAccount.id).where(OwnerAccount.id_number_hash == id_hash)):
                    raise AppError("ID_NUMBER_EXISTS", 409)  # taken meanwhile by another account
                acct.id_number_hash = id_hash
                acct.id_number_enc = cipher.encrypt("owner.id_number", query.id_number)
            if acct.name_enc is None:
                acct.name_enc = cipher.encrypt("owner.name", query.owner_name)
            limiter.clear(s, f"registry:{who.id}")
            prove_full(s, audit, who, who.id, query.vin, "registry", None)
    # refused only now, after the commit: the failure count and the audit record stay
    if answer == Answer.NO_MATCH:
        raise AppError("REGISTRY_NO_MATCH", 403)
    if answer == Answer.UNAVAILABLE:
        raise AppError("REGISTRY_UNAVAILABLE", 503)


def _registry_subjects(who: Principal, vin: str) -> dict[str, int]:
    return {f"registry:{who.id}": 1, f"registry-vin:{vin}": 3}


def _verification_query(
    session: Session,
    registry: VehicleRegistry | None,
    limiter: FailureLimiter,
    cipher: FieldCipher,
    who: Principal,
    vin: str,
    plate_no: str,
    owner_name: str,
    id_number: str,
) -> Query | None:
    """The checks before asking the registry; None if the owner already holds the whole history."""
    require(who, Perm.HISTORY_OWN)
    vin, plate_no = vin.strip().upper(), plate_no.strip().upper()
    owner_name, id_number = owner_name.strip(), id_number.strip().upper()
    if vin_error(vin):
        raise AppError("VIN_INVALID", 422)
    if plate_error(plate_no):
        raise AppError("PLATE_FORMAT", 422)
    if not owner_name:
        raise AppError("NAME_REQUIRED", 422)
    if not valid_id_number(id_number):
        raise AppError("ID_NUMBER_FORMAT", 422)
    if registry is None:
        raise AppError("REGISTRY_DISABLED", 409)
    limiter.check(session, _registry_subjects(who, vin))
    acct = session.get(OwnerAccount, who.id)
    if acct is None:
        raise AppError("TOKEN_INVALID", 401)
    id_hash = cipher.search_hash("owner.id_number", id_number)
    if acct.id_number_hash is not None and bytes(acct.id_number_hash) != id_hash:
        raise AppError("ID_NUMBER_MISMATCH", 422)
    if acct.id_number_hash is None and session.scalar(
        select(OwnerAccount.id).where(OwnerAccount.id_number_hash == id_hash)
    ):
        raise AppError("ID_NUMBER_EXISTS", 409)
    current = access(session, who.id, vin)
    if current is not None and current.full:
        return None
    return Query(vin, plate_no, owner_name, id_number)


def visible_record(session: Session, owner_id: int, record_id: int) -> tuple[RepairRecord, Access]:
    """A live repair the owner may see (their binding of its car covers its enterprise); anything
    else is 'not found' to them."""
    head = session.get(RepairRecord, record_id)
    seen = None if head is None else access(session, owner_id, head.vin)
    if head is None or head.status != "active" or seen is None or not seen.sees(head.enterprise_id):
        raise AppError("RECORD_NOT_FOUND", 404)
    return head, seen


def vehicles(session: Session, owner_id: int) -> list[str]:
    return list(
        session.scalars(
            select(OwnerVehicle.vin)
            .where(OwnerVehicle.owner_id == owner_id, OwnerVehicle.ended_at.is_(None))
            .order_by(OwnerVehicle.verified_at)
        )
    )


def binding(session: Session, owner_id: int, vin: str) -> dict[str, Any]:
    """What the owner's binding of the car covers: the whole history, or which enterprises' records."""
    ov = session.get(OwnerVehicle, (owner_id, vin))
    if ov is None or ov.ended_at is not None:
        raise AppError("VEHICLE_NOT_BOUND", 403)
    ents = session.execute(
        select(Enterprise.uscc, Enterprise.name, OwnerVehicleScope.bound_at)
        .join(Enterprise, Enterprise.id == OwnerVehicleScope.enterprise_id)
        .where(OwnerVehicleScope.owner_id == owner_id, OwnerVehicleScope.vin == vin)
        .order_by(OwnerVehicleScope.bound_at)
    ).all()
    return {
        "vin": vin,
        "full_history": ov.full_via is not None,
        "full_via": ov.full_via,
        "full_at": ov.full_at,
        "enterprises": [{"uscc": u, "name": n, "bound_at": b} for u, n, b in ents],
    }


NOTIFICATION_TEXT = {
    "binding_ended": "车辆 {vin} 已由新车主完成完整档案认证（车辆已过户），您对该车的认证和授权已结束，"
    "不能再查看该车档案。如有异议，请上传行驶证照片申请认证，由监管部门审核。",
}


def notifications(session: Session, owner_id: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(OwnerNotification)
        .where(OwnerNotification.owner_id == owner_id)
        .order_by(OwnerNotification.created_at.desc(), OwnerNotification.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": n.id,
            "kind": n.kind,
            "vin": n.vin,
            "text": NOTIFICATION_TEXT[n.kind].format(vin=n.vin),
            "created_at": n.created_at,
            "read": n.read_at is not None,
        }
        for n in rows
    ]


def mark_notifications_read(session: Session, owner_id: int) -> None:
    session.execute(
        update(OwnerNotification)
        .where(OwnerNotification.owner_id == owner_id, OwnerNotification.read_at.is_(None))
        .values(read_at=now())
    )


def grant(
    session: Session, audit: AuditLog, who: Principal, vin: str, uscc: str, days: int, max_days: int
) -> tuple[int, datetime]:
    """The owner lets one enterprise read this car's history until the grant expires or is revoked."""
    require(who, Perm.GRANT_MANAGE)
    if not 1 <= days <= max_days:
        raise AppError("GRANT_DAYS_INVALID", 422)
    seen = access(session, who.id, vin)
    if seen is None:
        raise AppError("VEHICLE_NOT_BOUND", 403)
    if not seen.full:  # a code proves one shop, not the car: it must not open the file to anyone
        raise AppError("FULL_VERIFICATION_REQUIRED", 403)
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
    """The owner's bound cars with what is known of them (brand, model) and whether the whole history
    was proven; the plate is shown only with the whole history (a code-only binder learns nothing of
    the car beyond its shop's records)."""
    rows = session.execute(
        select(
            OwnerVehicle.vin,
            OwnerVehicle.verified_at,
            (OwnerVehicle.full_via.is_not(None)).label("full_history"),
            case((OwnerVehicle.full_via.is_not(None), Vehicle.plate_no)).label("plate_no"),
            Vehicle.brand,
            Vehicle.model,
        )
        .outerjoin(Vehicle, Vehicle.vin == OwnerVehicle.vin)
        .where(OwnerVehicle.owner_id == owner_id, OwnerVehicle.ended_at.is_(None))
        .order_by(OwnerVehicle.verified_at)
    ).all()
    return [r._asdict() for r in rows]
