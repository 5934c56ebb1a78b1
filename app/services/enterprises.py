"""Enterprises and their API credentials (several per enterprise, one per shop system)."""

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import ApiCredential, Enterprise
from app.domain.clock import now
from app.domain.enterprise import EnterpriseIn
from app.domain.errors import AppError
from app.security.passwords import hash_secret, verify_secret
from app.security.ratelimit import FailureLimiter


@dataclass(frozen=True)
class IssuedCredential:
    key_id: str
    secret: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class Authenticated:
    enterprise_id: int
    credential_id: int


def register(session: Session, data: EnterpriseIn, secret: str | None = None) -> tuple[int, IssuedCredential]:
    """A new enterprise with its first credential; the secret is generated unless the caller chose one."""
    ent_id = session.scalar(
        pg_insert(Enterprise)
        .values(**data.model_dump())
        .on_conflict_do_nothing(index_elements=["uscc"])
        .returning(Enterprise.id)
    )
    if ent_id is None:
        raise AppError("ENTERPRISE_EXISTS", 409)
    return ent_id, issue_credential(session, ent_id, "首个接入凭证", secret)


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


def credential_active(session: Session, credential_id: int) -> bool:
    revoked = session.execute(
        select(ApiCredential.revoked_at).where(ApiCredential.id == credential_id)
    ).first()
    return revoked is not None and revoked[0] is None


def enterprise(session: Session, enterprise_id: int) -> Enterprise | None:
    return session.get(Enterprise, enterprise_id)
