"""Enterprises and their API credentials (several per enterprise, one per shop system), and their
onboarding: a self-registered enterprise is pending (no token, no upload, not listed) until a
regulator of its region approves it, unless the province's licence roster lists it with a licence in
force, the same licence number and region; a licence revoked in a later roster suspends it.

    pending ──regulator approves──▶ active ◀──roster: licence in force again── suspended
       │                              ▲  └──roster: revoked/cancelled/suspended/expired──▲
       └──regulator refuses (reason)──▶ refused ──regulator approves──┘
"""

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import ApiCredential, Enterprise, LicenceRoster
from app.domain.clock import now, today_in_china
from app.domain.enterprise import EnterpriseIn
from app.domain.errors import AppError
from app.domain.roster import LICENCE_STATUS_NAMES, licence_in_force
from app.security.auditlog import AuditLog, Event
from app.security.passwords import hash_secret, verify_secret
from app.security.ratelimit import FailureLimiter
from app.security.rbac import Perm, Principal, region_prefix, require, require_region

STATUS_NAMES = {"pending": "待审核", "active": "已通过", "refused": "未通过", "suspended": "已暂停"}


@dataclass(frozen=True)
class IssuedCredential:
    key_id: str
    secret: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class Authenticated:
    enterprise_id: int
    credential_id: int


@dataclass(frozen=True)
class Registered:
    enterprise_id: int
    credential: IssuedCredential
    status: str  # active (found on the roster) or pending


def roster_match(session: Session, data: EnterpriseIn) -> LicenceRoster | None:
    """The roster row vouching for this registration: same USCC, licence number and region, in force.
    USCCs are public, so the USCC alone would let anyone claim a licensed shop's name."""
    row = session.get(LicenceRoster, data.uscc)
    if (
        row is None
        or not licence_in_force(row.licence_status, row.valid_until, today_in_china())
        or (data.licence_no or "").strip() != row.licence_no
        or data.region_code != row.region_code
    ):
        return None
    return row


def register(
    session: Session,
    audit: AuditLog,
    data: EnterpriseIn,
    secret: str | None = None,
    client_ip: str | None = None,
    request_id: str | None = None,
) -> Registered:
    """A new enterprise with its first credential (the secret is generated unless the caller chose
    one): active at once if the licence roster vouches for it, pending a regulator's review if not.

    USCCs are public, so someone may register a shop's USCC before the shop does. Such a squatter
    never held a token, so its row is taken over (its credentials revoked) by a registration the
    roster vouches for while it is pending, or by any registration once a regulator refused it."""
    on_roster = roster_match(session, data) is not None
    status = "active" if on_roster else "pending"
    values = {**data.model_dump(), "status": status, "status_source": "roster" if on_roster else "register",
              "status_reason": None, "status_by": None, "status_at": now()}  # fmt: skip
    detail: dict[str, Any] = {"status": status, "via": "roster" if on_roster else "self"}
    ent_id = session.scalar(
        pg_insert(Enterprise)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["uscc"])
        .returning(Enterprise.id)
    )
    if ent_id is None:
        held = session.scalar(select(Enterprise).where(Enterprise.uscc == data.uscc).with_for_update())
        assert held is not None
        if not (held.status == "refused" or (held.status == "pending" and on_roster)):
            raise AppError("ENTERPRISE_EXISTS", 409)
        detail["replaced"] = held.status
        session.execute(update(Enterprise).where(Enterprise.id == held.id).values(**values))
        session.execute(
            update(ApiCredential)
            .where(ApiCredential.enterprise_id == held.id, ApiCredential.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        ent_id = held.id
    cred = issue_credential(session, ent_id, "首个接入凭证", secret)
    audit.record(
        session,
        Event("public", data.uscc, "enterprise.register", f"enterprise:{ent_id}", "success", detail,
              request_id, client_ip),
    )  # fmt: skip
    return Registered(ent_id, cred, status)


def status_error(e: Enterprise | None) -> AppError | None:
    """Why this enterprise may not act (get a token, upload, sign in its portal), or None if it may."""
    if e is None:
        return AppError("ENTERPRISE_NOT_FOUND", 404)
    if e.status == "active":
        return None
    codes = {"pending": "ENTERPRISE_PENDING", "refused": "ENTERPRISE_REFUSED"}
    code = codes.get(e.status, "ENTERPRISE_SUSPENDED")
    err = AppError(code, 403)
    return AppError(code, 403, f"{err.detail}：{e.status_reason}") if e.status_reason else err


def require_active(session: Session, enterprise_id: int) -> None:
    if (err := status_error(session.get(Enterprise, enterprise_id))) is not None:
        raise err


def view(e: Enterprise, roster: LicenceRoster | None = None) -> dict[str, Any]:
    """What the enterprise itself and its regulators see of its onboarding."""
    return {
        "enterprise_id": e.id,
        "uscc": e.uscc,
        "name": e.name,
        "licence_no": e.licence_no,
        "category": e.category,
        "region_code": e.region_code,
        "address": e.address,
        "contact_name": e.contact_name,
        "contact_phone": e.contact_phone,
        "status": e.status,
        "status_name": STATUS_NAMES.get(e.status, e.status),
        "status_reason": e.status_reason,
        "status_at": e.status_at,
        "created_at": e.created_at,
        "roster": None
        if roster is None
        else {
            "name": roster.name,
            "licence_no": roster.licence_no,
            "region_code": roster.region_code,
            "licence_status": roster.licence_status,
            "licence_status_name": LICENCE_STATUS_NAMES.get(roster.licence_status, roster.licence_status),
            "valid_until": roster.valid_until,
        },
    }


def own_status(session: Session, enterprise_id: int) -> dict[str, Any]:
    """An enterprise asking where its registration stands (and, if refused, why)."""
    e = session.get(Enterprise, enterprise_id)
    if e is None:
        raise AppError("ENTERPRISE_NOT_FOUND", 404)
    keys = ("enterprise_id", "uscc", "name", "status", "status_name", "status_reason", "status_at")
    return {k: v for k, v in view(e).items() if k in keys}


def for_review(
    session: Session, who: Principal, status: str = "pending", limit: int = 200
) -> list[dict[str, Any]]:
    """The region's enterprises in `status` (the pending ones by default), oldest first, each with
    what the roster says of its USCC, if anything, to help the regulator decide."""
    require(who, Perm.ENTERPRISE_REVIEW)
    assert who.region_code is not None
    rows = session.execute(
        select(Enterprise, LicenceRoster)
        .outerjoin(LicenceRoster, LicenceRoster.uscc == Enterprise.uscc)
        .where(Enterprise.status == status, Enterprise.region_code.startswith(region_prefix(who.region_code)))
        .order_by(Enterprise.created_at, Enterprise.id)
        .limit(limit)
    ).all()
    return [view(e, r) for e, r in rows]


def review(
    session: Session, audit: AuditLog, who: Principal, uscc: str, approve: bool, reason: str | None
) -> str:
    """A regulator of the enterprise's region approves it, or refuses it with a reason the enterprise
    is told. A refused enterprise may be approved later (once it has shown what was missing)."""
    require(who, Perm.ENTERPRISE_REVIEW)
    e = session.scalar(select(Enterprise).where(Enterprise.uscc == uscc).with_for_update())
    if e is None:
        raise AppError("ENTERPRISE_NOT_FOUND", 404)
    require_region(who, e.region_code)
    reason = (reason or "").strip()[:500] or None
    if e.status not in ("pending", "refused") or (e.status == "refused" and not approve):
        raise AppError("ENTERPRISE_STATE", 409)
    if not approve and reason is None:
        raise AppError("REASON_REQUIRED", 422)
    listed = session.get(LicenceRoster, e.uscc)
    if approve and listed is not None and not licence_in_force(
        listed.licence_status, listed.valid_until, today_in_china()
    ):  # the roster says its licence is revoked, cancelled, suspended or expired
        raise AppError("LICENCE_NOT_IN_FORCE", 409)
    e.status = "active" if approve else "refused"
    e.status_reason, e.status_source, e.status_by, e.status_at = reason, "regulator", who.id, now()
    audit.record(
        session,
        Event(who.actor_kind, str(who.id), "enterprise.approve" if approve else "enterprise.refuse",
              f"enterprise:{e.id}", "success", {"uscc": e.uscc, "reason": reason}, who.request_id,
              who.client_ip),
    )  # fmt: skip
    return e.status


def issue_credential(
    session: Session, enterprise_id: int, label: str | None, secret: str | None = None
) -> IssuedCredential:
    cred = IssuedCredential("EK" + secrets.token_hex(8).upper(), secret or secrets.token_urlsafe(32))
    session.add(
        ApiCredential(
            enterprise_id=enterprise_id, key_id=cred.key_id, secret_hash=hash_secret(cred.secret), label=label
        )
    )
    session.flush()
    return cred


def revoke_credential(session: Session, enterprise_id: int, key_id: str) -> bool:
    done = session.execute(
        update(ApiCredential)
        .where(
            ApiCredential.enterprise_id == enterprise_id,
            ApiCredential.key_id == key_id,
            ApiCredential.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def list_credentials(session: Session, enterprise_id: int) -> list[ApiCredential]:
    return list(
        session.scalars(
            select(ApiCredential)
            .where(ApiCredential.enterprise_id == enterprise_id)
            .order_by(ApiCredential.id)
        )
    )


def authenticate(
    session: Session, limiter: FailureLimiter, key_id: str, secret: str, client_ip: str
) -> Authenticated | None:
    """Check a key id and secret; failures are recorded (the caller must commit them) and throttled."""
    subjects = {f"key:{key_id}": 1, f"ip:{client_ip}": 10}
    limiter.check(session, subjects)
    cred = session.scalar(select(ApiCredential).where(ApiCredential.key_id == key_id))
    ok = verify_secret(cred.secret_hash if cred else None, secret)
    if not ok or cred is None or cred.revoked_at is not None:
        limiter.record_failure(session, subjects)
        return None
    limiter.clear(session, f"key:{key_id}")
    return Authenticated(cred.enterprise_id, cred.id)


def check_credential(session: Session, credential_id: int) -> None:
    """A token stays good only while its credential is not revoked and its enterprise is active:
    both are read at each request, so a suspension stops tokens already issued."""
    row = session.execute(
        select(ApiCredential.revoked_at, Enterprise)
        .join(Enterprise, Enterprise.id == ApiCredential.enterprise_id)
        .where(ApiCredential.id == credential_id)
    ).first()
    if row is None or row[0] is not None:
        raise AppError("CREDENTIAL_REVOKED", 401)
    if (err := status_error(row[1])) is not None:
        raise err


def enterprise(session: Session, enterprise_id: int) -> Enterprise | None:
    return session.get(Enterprise, enterprise_id)
