"""Binding a car's whole history by a photo of its 行驶证, the fallback of the vehicle registration check
(app.security.vehicle_registry) where that is not configured, unavailable or does not match: the photo
goes to the object store, a regulator of the car's home region looks at it and approves or rejects.
The photo is personal data: every look at it is audited."""

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import VehicleClaim
from app.domain.clock import now
from app.domain.errors import AppError
from app.domain.plate import plate_error
from app.domain.reference import home_region
from app.domain.vin import vin_error
from app.security.auditlog import AuditLog, Event
from app.security.rbac import Perm, Principal, region_prefix, require, require_region
from app.services import owners
from app.services.attachments import sniff
from app.storage import ObjectStore

STATUS_NAMES = {"pending": "待审核", "approved": "已通过", "rejected": "未通过"}


def submit(
    session: Session,
    objects: ObjectStore,
    who: Principal,
    vin: str,
    plate_no: str,
    photo: bytes,
    default_region: str,
    max_bytes: int,
) -> int:
    require(who, Perm.HISTORY_OWN)
    vin, plate_no = vin.strip().upper(), plate_no.strip().upper()
    if vin_error(vin):
        raise AppError("VIN_INVALID", 422)
    if plate_error(plate_no):
        raise AppError("PLATE_FORMAT", 422)
    if not photo:
        raise AppError("ATTACHMENT_EMPTY", 400)
    if len(photo) > max_bytes:
        raise AppError("ATTACHMENT_TOO_LARGE", 413)
    content_type = sniff(photo)
    if content_type not in ("image/jpeg", "image/png"):
        raise AppError("ATTACHMENT_TYPE", 415, "行驶证照片仅支持 JPEG、PNG")
    sha = hashlib.sha256(photo).hexdigest()
    key = f"claims/{who.id}/{sha}"
    objects.put(key, photo, content_type, sha)
    claim = VehicleClaim(
        owner_id=who.id,
        vin=vin,
        plate_no=plate_no,
        region_code=home_region(plate_no) or default_region,
        object_key=key,
        sha256=sha,
        content_type=content_type,
    )
    session.add(claim)
    session.flush()
    return claim.id


def view(c: VehicleClaim) -> dict[str, Any]:
    return {
        "id": c.id,
        "vin": c.vin,
        "plate_no": c.plate_no,
        "region_code": c.region_code,
        "status": c.status,
        "status_name": STATUS_NAMES[c.status],
        "created_at": c.created_at,
        "reviewed_at": c.reviewed_at,
        "review_note": c.review_note,
    }


def of_owner(session: Session, who: Principal) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(VehicleClaim).where(VehicleClaim.owner_id == who.id).order_by(VehicleClaim.id.desc())
    )
    return [view(c) for c in rows]


def pending(session: Session, who: Principal) -> list[dict[str, Any]]:
    require(who, Perm.CLAIM_REVIEW)
    assert who.region_code is not None
    rows = session.scalars(
        select(VehicleClaim)
        .where(
            VehicleClaim.status == "pending",
            VehicleClaim.region_code.startswith(region_prefix(who.region_code)),
        )
        .order_by(VehicleClaim.id)
        .limit(200)
    )
    return [view(c) for c in rows]


def _claim(session: Session, who: Principal, claim_id: int, lock: bool = False) -> VehicleClaim:
    require(who, Perm.CLAIM_REVIEW)
    c = session.get(VehicleClaim, claim_id, with_for_update=lock)
    if c is None:
        raise AppError("CLAIM_NOT_FOUND", 404)
    require_region(who, c.region_code)
    return c


def _event(audit: AuditLog, session: Session, who: Principal, action: str, c: VehicleClaim, **d: Any) -> None:
    audit.record(
        session,
        Event(
            who.actor_kind, str(who.id), action, f"claim:{c.id}", "success", d, who.request_id, who.client_ip
        ),
    )


def photo(
    session: Session, objects: ObjectStore, audit: AuditLog, who: Principal, claim_id: int
) -> tuple[str, bytes]:
    c = _claim(session, who, claim_id)
    _event(audit, session, who, "claim.photo_read", c)
    data = objects.get(c.object_key)
    if hashlib.sha256(data).hexdigest() != c.sha256:
        raise AppError("ATTACHMENT_CHECKSUM", 500, "附件存储内容与登记的校验和不符")
    return c.content_type, data


def review(
    session: Session, audit: AuditLog, who: Principal, claim_id: int, approve: bool, note: str | None
) -> None:
    c = _claim(session, who, claim_id, lock=True)
    if c.status != "pending":
        raise AppError("CLAIM_STATE", 409)
    c.status = "approved" if approve else "rejected"
    c.reviewed_by, c.reviewed_at, c.review_note = who.id, now(), (note or "").strip()[:500] or None
    _event(audit, session, who, "claim.review", c, outcome=c.status)
    if approve:  # the fallback of the registry check: the whole history, other owners' bindings end
        owners.prove_full(session, audit, who, c.owner_id, c.vin, "claim", c.id)
