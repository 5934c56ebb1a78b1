"""HTTP pieces both doors use (the JSON API and the portal pages): file responses and form uploads.
Each wraps one service call; the portal imports these, never another door's endpoints."""

from urllib.parse import quote

from fastapi import UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.api.jsonbody import json_body
from app.domain.clock import now
from app.domain.errors import AppError
from app.runtime import Runtime
from app.security.rbac import Principal
from app.services import claims, exports, notices, statistics, vehiclefile
from app.services.reads import ReadService


def attachment_headers(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}


def history_response(rt: Runtime, who: Principal, vin: str) -> Response:
    """A car's history as this reader may see it (the read audited in its transaction), written as JSON
    after the commit: the connection is back in the pool while the body is built."""
    with rt.db.transaction() as s:
        hist = ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin)
    return json_body(hist)


def read_uploads(files: list[UploadFile], max_bytes: int) -> list[notices.UploadedFile]:
    if len(files) > notices.MAX_ATTACHMENTS:  # before reading any of them
        raise AppError("TOO_MANY_FILES", 422, f"每条信息最多 {notices.MAX_ATTACHMENTS} 个附件")
    # an empty file input in a browser form arrives as one nameless, empty part
    return [
        notices.UploadedFile(f.filename or "附件", f.file.read(max_bytes + 1))
        for f in files
        if f.filename or f.size
    ]


def export_response(
    s: Session,
    rt: Runtime,
    who: Principal,
    period: statistics.Period,
    region: str | None,
    fmt: str,
    table: str,
) -> Response:
    f = exports.export(s, rt.audit, who, period, region, fmt, table)
    return Response(f.data, media_type=f.media_type, headers=attachment_headers(f.filename))


def vehicle_file(vin: str, who: Principal, rt: Runtime) -> Response:
    """The owner's printable vehicle file (PDF) of one car; the read is audited."""
    with rt.db.transaction() as s:
        hist = ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin)
    return Response(
        vehiclefile.render(hist, now()),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="vehicle-file-{vin}.pdf"'},
    )


def claim_photo(claim_id: int, who: Principal, rt: Runtime) -> Response:
    """A 行驶证 photo for the regulator reviewing the claim; the view is audited."""
    with rt.db.transaction() as s:
        media, data = claims.photo(s, rt.objects, rt.audit, who, claim_id)
    return Response(data, media_type=media, headers={"Cache-Control": "no-store"})
