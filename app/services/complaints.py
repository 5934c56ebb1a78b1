"""Complaints about repairs: an owner files one, regulators of the enterprise's region accept, assign,
respond and close it against a deadline; the enterprise may answer. Every step is audited.

submitted → accepted → assigned → responded → closed (a complaint may also be answered straight
after acceptance by the regulator who accepted it).
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Complaint, Enterprise, RepairRecord, StaffAccount
from app.domain.clock import now
from app.domain.errors import AppError
from app.security.auditlog import AuditLog, Event
from app.security.rbac import Perm, Principal, Role, in_region, region_prefix, require, require_region
from app.services import owners

STATUS_NAMES = {
    "submitted": "待受理",
    "accepted": "已受理",
    "assigned": "办理中",
    "responded": "已答复",
    "closed": "已办结",
}
OPEN = ("submitted", "accepted", "assigned")  # not yet answered: these can be overdue


def is_overdue(c: Complaint, at: datetime | None = None) -> bool:
    return c.status in OPEN and (at or now()) > c.deadline_at


def file(
    session: Session, who: Principal, record_id: int, title: str, content: str, deadline_days: int
) -> int:
    require(who, Perm.COMPLAINT_FILE)
    title, content = title.strip(), content.strip()
    if not title or not content:
        raise AppError("COMPLAINT_TEXT_REQUIRED", 422)
    # on the records the owner may see; a code binding suffices (only the shop that printed the code
    # besides the owner holds it, and a complaint goes to a regulator, it moves no public score)
    head, _ = owners.visible_record(session, who.id, record_id)
    ent = session.get(Enterprise, head.enterprise_id)
    assert ent is not None
    c = Complaint(
        record_id=record_id,
        enterprise_id=ent.id,
        owner_id=who.id,
        region_code=ent.region_code,
        title=title[:100],
        content=content[:4000],
        deadline_at=now() + timedelta(days=deadline_days),
    )
    session.add(c)
    session.flush()
    return c.id


def view(c: Complaint, ent: Enterprise | None = None, settlement_no: str | None = None) -> dict[str, Any]:
    return {
        "id": c.id,
        "record_id": c.record_id,
        "settlement_no": settlement_no,
        "enterprise_uscc": ent.uscc if ent else None,
        "enterprise_name": ent.name if ent else None,
        "region_code": c.region_code,
        "title": c.title,
        "content": c.content,
        "status": c.status,
        "status_name": STATUS_NAMES[c.status],
        "created_at": c.created_at,
        "deadline_at": c.deadline_at,
        "overdue": is_overdue(c),
        "accepted_at": c.accepted_at,
        "assignee_id": c.assignee_id,
        "assigned_at": c.assigned_at,
        "response": c.response,
        "responded_at": c.responded_at,
        "closed_at": c.closed_at,
        "close_note": c.close_note,
        "enterprise_reply": c.enterprise_reply,
        "enterprise_replied_at": c.enterprise_replied_at,
    }


def _listing(session: Session, *where: Any) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Complaint, Enterprise, RepairRecord.settlement_no)
        .join(Enterprise, Enterprise.id == Complaint.enterprise_id)
        .join(RepairRecord, RepairRecord.id == Complaint.record_id)
        .where(*where)
        .order_by(Complaint.created_at.desc(), Complaint.id.desc())
        .limit(500)
    ).all()
    return [view(c, e, no) for c, e, no in rows]


def of_owner(session: Session, who: Principal) -> list[dict[str, Any]]:
    require(who, Perm.COMPLAINT_FILE)
    return _listing(session, Complaint.owner_id == who.id)


def of_enterprise(session: Session, who: Principal) -> list[dict[str, Any]]:
    require(who, Perm.COMPLAINT_ANSWER)
    return _listing(session, Complaint.enterprise_id == who.enterprise_id)


def of_region(
    session: Session, who: Principal, status: str | None = None, overdue_only: bool = False
) -> list[dict[str, Any]]:
    require(who, Perm.COMPLAINT_HANDLE)
    assert who.region_code is not None
    where = [Complaint.region_code.startswith(region_prefix(who.region_code))]
    if status:
        where.append(Complaint.status == status)
    if overdue_only:
        where += [Complaint.status.in_(OPEN), Complaint.deadline_at < now()]
    return _listing(session, *where)


def get(session: Session, who: Principal, complaint_id: int) -> dict[str, Any]:
    """The complaint for its owner, its enterprise or a regulator of its region; 404 to anyone else."""
    c = session.get(Complaint, complaint_id)
    allowed = c is not None and (
        (who.role == Role.OWNER and c.owner_id == who.id)
        or (who.role == Role.ENTERPRISE_USER and c.enterprise_id == who.enterprise_id)
        or (
            who.role == Role.REGULATOR
            and who.region_code is not None
            and in_region(who.region_code, c.region_code)
        )
    )
    if c is None or not allowed:
        raise AppError("COMPLAINT_NOT_FOUND", 404)
    ent = session.get(Enterprise, c.enterprise_id)
    head = session.get(RepairRecord, c.record_id)
    return view(c, ent, head.settlement_no if head else None)


def _handled(session: Session, who: Principal, complaint_id: int, allowed: tuple[str, ...]) -> Complaint:
    require(who, Perm.COMPLAINT_HANDLE)
    c = session.get(Complaint, complaint_id, with_for_update=True)
    if c is None:
        raise AppError("COMPLAINT_NOT_FOUND", 404)
    require_region(who, c.region_code)
    if c.status not in allowed:
        raise AppError("COMPLAINT_STATE", 409)
    return c


def _event(audit: AuditLog, session: Session, who: Principal, c: Complaint, step: str, **detail: Any) -> None:
    audit.record(
        session,
        Event(
            who.actor_kind,
            str(who.id),
            f"complaint.{step}",
            f"complaint:{c.id}",
            "success",
            detail,
            who.request_id,
            who.client_ip,
        ),
    )


def accept(session: Session, audit: AuditLog, who: Principal, complaint_id: int) -> None:
    c = _handled(session, who, complaint_id, ("submitted",))
    c.status, c.accepted_at, c.accepted_by = "accepted", now(), who.id
    _event(audit, session, who, c, "accept")


def assign(session: Session, audit: AuditLog, who: Principal, complaint_id: int, assignee_id: int) -> None:
    c = _handled(session, who, complaint_id, ("accepted", "assigned"))
    assignee = session.get(StaffAccount, assignee_id)
    if (
        assignee is None
        or assignee.role != Role.REGULATOR
        or assignee.disabled_at is not None
        or assignee.region_code is None
        or not in_region(assignee.region_code, c.region_code)
    ):
        raise AppError("ASSIGNEE_INVALID", 422)
    c.status, c.assignee_id, c.assigned_at = "assigned", assignee_id, now()
    _event(audit, session, who, c, "assign", assignee=assignee_id)


def respond(session: Session, audit: AuditLog, who: Principal, complaint_id: int, response: str) -> None:
    c = _handled(session, who, complaint_id, ("accepted", "assigned"))
    if c.status == "assigned" and c.assignee_id != who.id:
        raise AppError("NOT_ASSIGNEE", 403)
    if not response.strip():
        raise AppError("TEXT_REQUIRED", 422)
    c.status, c.response, c.responded_at = "responded", response.strip()[:4000], now()
    _event(audit, session, who, c, "respond", late=c.responded_at > c.deadline_at)


def close(session: Session, audit: AuditLog, who: Principal, complaint_id: int, note: str | None) -> None:
    c = _handled(session, who, complaint_id, ("responded",))
    c.status, c.closed_at, c.closed_by = "closed", now(), who.id
    c.close_note = (note or "").strip()[:1000] or None
    _event(audit, session, who, c, "close")


def enterprise_reply(session: Session, who: Principal, complaint_id: int, text: str) -> None:
    require(who, Perm.COMPLAINT_ANSWER)
    c = session.get(Complaint, complaint_id, with_for_update=True)
    if c is None or c.enterprise_id != who.enterprise_id:
        raise AppError("COMPLAINT_NOT_FOUND", 404)
    if not text.strip():
        raise AppError("TEXT_REQUIRED", 422)
    if c.enterprise_reply is not None:
        raise AppError("REPLY_EXISTS", 409)
    c.enterprise_reply, c.enterprise_replied_at = text.strip()[:4000], now()


def regulators_for(session: Session, region_code: str) -> list[StaffAccount]:
    """Who a complaint in this region may be assigned to."""
    rows = session.scalars(
        select(StaffAccount)
        .where(StaffAccount.role == Role.REGULATOR, StaffAccount.disabled_at.is_(None))
        .order_by(StaffAccount.username)
    )
    return [a for a in rows if a.region_code and in_region(a.region_code, region_code)]
