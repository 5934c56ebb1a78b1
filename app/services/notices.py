"""Notices, policies, standards and technical information that regulators publish for everyone."""

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Notice, NoticeAttachment
from app.domain.errors import AppError
from app.security.auditlog import AuditLog, Event
from app.security.rbac import Perm, Principal, require
from app.services.attachments import sniff
from app.storage import ObjectStore

KINDS: dict[str, str] = {
    "notice": "通知公告",
    "policy": "政策法规",
    "standard": "标准规范",
    "technical": "技术信息",
}
PAGE_SIZE = 20

MAX_ATTACHMENTS = 10  # per notice: each one is sniffed and stored, so the count is capped


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes


def publish(
    session: Session,
    objects: ObjectStore,
    audit: AuditLog,
    who: Principal,
    kind: str,
    title: str,
    body: str,
    files: list[UploadedFile],
    max_bytes: int,
) -> int:
    """A regulator publishes under its own region; attachments go to the object store."""
    require(who, Perm.NOTICE_PUBLISH)
    if kind not in KINDS:
        raise AppError("NOTICE_KIND_UNKNOWN", 422)
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise AppError("TEXT_REQUIRED", 422, "请填写标题和正文")
    if len(files) > MAX_ATTACHMENTS:
        raise AppError("TOO_MANY_FILES", 422, f"每条信息最多 {MAX_ATTACHMENTS} 个附件")
    checked: list[tuple[UploadedFile, str, str]] = []
    for f in files:  # every file is checked before anything is stored
        if not f.data:
            raise AppError("ATTACHMENT_EMPTY", 400)
        if len(f.data) > max_bytes:
            raise AppError("ATTACHMENT_TOO_LARGE", 413)
        content_type = sniff(f.data)
        if content_type is None:
            raise AppError("ATTACHMENT_TYPE", 415)
        checked.append((f, content_type, hashlib.sha256(f.data).hexdigest()))
    assert who.region_code is not None
    notice = Notice(kind=kind, title=title[:200], body=body, region_code=who.region_code, published_by=who.id)
    session.add(notice)
    session.flush()
    for f, content_type, sha in checked:
        key = f"notices/{notice.id}/{sha}"
        objects.put(key, f.data, content_type, sha)
        session.add(
            NoticeAttachment(
                notice_id=notice.id,
                filename=f.filename[:200] or "附件",
                content_type=content_type,
                size_bytes=len(f.data),
                sha256=sha,
                object_key=key,
            )
        )
    audit.record(
        session,
        Event(
            who.actor_kind,
            str(who.id),
            "notice.publish",
            f"notice:{notice.id}",
            "success",
            {"kind": kind, "attachments": len(checked)},
            who.request_id,
            who.client_ip,
        ),
    )
    return notice.id


def _summary(n: Notice) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "kind_name": KINDS[n.kind],
        "title": n.title,
        "region_code": n.region_code,
        "published_at": n.published_at,
    }


def listing(session: Session, kind: str | None = None, page: int = 1) -> dict[str, Any]:
    if kind is not None and kind not in KINDS:
        raise AppError("NOTICE_KIND_UNKNOWN", 422)
    where = [] if kind is None else [Notice.kind == kind]
    page = max(1, page)
    rows = session.scalars(
        select(Notice)
        .where(*where)
        .order_by(Notice.published_at.desc(), Notice.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    total = session.scalar(select(func.count()).select_from(Notice).where(*where)) or 0
    return {"total": total, "page": page, "page_size": PAGE_SIZE, "items": [_summary(n) for n in rows]}


def detail(session: Session, notice_id: int) -> dict[str, Any]:
    n = session.get(Notice, notice_id)
    if n is None:
        raise AppError("NOTICE_NOT_FOUND", 404)
    files = session.scalars(
        select(NoticeAttachment).where(NoticeAttachment.notice_id == notice_id).order_by(NoticeAttachment.id)
    )
    return {
        **_summary(n),
        "body": n.body,
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size_bytes": a.size_bytes}
            for a in files
        ],
    }


def attachment(
    session: Session, objects: ObjectStore, notice_id: int, attachment_id: int
) -> tuple[NoticeAttachment, bytes]:
    a = session.get(NoticeAttachment, attachment_id)
    if a is None or a.notice_id != notice_id:
        raise AppError("NOT_FOUND", 404)
    data = objects.get(a.object_key)
    if hashlib.sha256(data).hexdigest() != a.sha256:
        raise AppError("ATTACHMENT_CHECKSUM", 500, "附件存储内容与登记的校验和不符")
    return a, data
