"""Attachments (scanned settlement lists, photos): bytes to the object store, metadata and checksum here."""

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Attachment
from app.domain.errors import AppError
from app.domain.reference import code_tables
from app.storage import ObjectStore

# Trust the bytes, not the declared type: each allowed type is recognised by its signature.
_SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    sha256: str
    size_bytes: int
    content_type: str


def sniff(data: bytes) -> str | None:
    return next((t for t, sigs in _SIGNATURES.items() if data.startswith(sigs)), None)


def store(
    session: Session,
    objects: ObjectStore,
    record_id: int,
    enterprise_id: int,
    kind: str,
    filename: str,
    data: bytes,
    declared_sha256: str | None,
    max_bytes: int,
) -> StoredAttachment:
    if not data:
        raise AppError("ATTACHMENT_EMPTY", 400)
    if len(data) > max_bytes:
        raise AppError("ATTACHMENT_TOO_LARGE", 413)
    if kind not in code_tables()["attachment_kind"]:
        raise AppError("CODE_UNKNOWN", 400, "附件类型代码不在代码表 attachment_kind 中")
    content_type = sniff(data)
    if content_type is None:
        raise AppError("ATTACHMENT_TYPE", 415)
    sha = hashlib.sha256(data).hexdigest()
    if declared_sha256 is not None and declared_sha256.lower() != sha:
        raise AppError("ATTACHMENT_CHECKSUM", 400)
    # content-addressed key: a retried upload rewrites the same object, never a second copy
    key = f"attachments/{enterprise_id}/{record_id}/{sha}"
    objects.put(key, data, content_type, sha)
    att_id = session.scalar(
        pg_insert(Attachment)
        .values(
            record_id=record_id,
            kind=kind,
            filename=filename[:200],
            content_type=content_type,
            size_bytes=len(data),
            sha256=sha,
            object_key=key,
        )
        .on_conflict_do_update(index_elements=["record_id", "sha256"], set_={"kind": kind})
        .returning(Attachment.id)
    )
    assert att_id is not None
    return StoredAttachment(att_id, sha, len(data), content_type)


def list_for(session: Session, record_ids: list[int]) -> list[Attachment]:
    return list(
        session.scalars(
            select(Attachment).where(Attachment.record_id.in_(record_ids)).order_by(Attachment.id)
        )
    )


def load(
    session: Session, objects: ObjectStore, record_id: int, attachment_id: int
) -> tuple[Attachment, bytes]:
    """The bytes, verified against the checksum taken at upload before anyone is handed them."""
    att = session.scalar(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.record_id == record_id)
    )
    if att is None:
        raise AppError("NOT_FOUND", 404)
    data = objects.get(att.object_key)
    if hashlib.sha256(data).hexdigest() != att.sha256:
        raise AppError("ATTACHMENT_CHECKSUM", 500, "附件存储内容与登记的校验和不符")
    return att, data
