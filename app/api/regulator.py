"""Regulator API: histories and enterprises of the region, complaints, statistics and exports, notices,
and 行驶证 claims. Everything is scoped to the regulator's region and the sensitive reads are audited."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.api.deps import RuntimeDep, StaffDep
from app.api.errors import ERROR_RESPONSES
from app.api.jsonbody import json_body
from app.api.public import attachment_headers
from app.domain.errors import AppError
from app.runtime import Runtime
from app.security.auditlog import Event
from app.security.rbac import Perm, Principal, require
from app.security.reads import ReadService
from app.services import claims, complaints, enterprises, exports, notices, statistics

router = APIRouter(prefix="/api/v1/regulator", tags=["监管"], responses=ERROR_RESPONSES)

VinPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPR-Z]{17}$", description="车辆识别代号")]
UsccPath = Annotated[str, Path(pattern=r"^[0-9A-Z]{18}$", description="统一社会信用代码")]


@router.get(
    "/vehicles/{vin}/history",
    summary="车辆维修档案（仅本辖区企业的记录）",
    description="只返回管辖区域内企业的维修记录；每次查询均记入审计日志。",
)
def history(vin: VinPath, who: StaffDep, rt: RuntimeDep) -> Response:
    with rt.db.transaction() as s:
        hist = ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin)
    return json_body(hist)  # after the commit: the connection is back in the pool


@router.get(
    "/enterprises",
    summary="本辖区待审核（或其他状态）的企业",
    description="默认列出待审核（pending）的自行注册企业，附道路运政许可名册中该统一社会信用代码的记录（如有）。",
)
def enterprises_for_review(
    who: StaffDep,
    rt: RuntimeDep,
    status: Annotated[str, Query(pattern="^(pending|active|refused|suspended)$")] = "pending",
) -> list[dict[str, Any]]:
    with rt.db.transaction() as s:
        return enterprises.for_review(s, who, status)


class EnterpriseReviewIn(BaseModel):
    approve: bool = Field(description="true 通过；false 不通过（须填写 reason）")
    reason: str | None = Field(default=None, max_length=500, description="不通过的原因（企业查询状态时可见）")


@router.post(
    "/enterprises/{uscc}/review",
    summary="审核自行注册的企业（通过 / 不通过）",
    description="仅限本辖区的企业（REGION_FORBIDDEN）；不通过须填写原因（REASON_REQUIRED）；"
    "只能审核待审核或未通过的企业（ENTERPRISE_STATE）。每次审核记入审计日志。",
)
def review_enterprise(
    uscc: UsccPath, body: EnterpriseReviewIn, who: StaffDep, rt: RuntimeDep
) -> dict[str, str]:
    with rt.db.transaction() as s:
        status = enterprises.review(s, rt.audit, who, uscc, body.approve, body.reason)
    return {"status": status}


@router.get("/enterprises/{uscc}", summary="企业详情（含联系人，仅本辖区）")
def enterprise(uscc: UsccPath, who: StaffDep, rt: RuntimeDep) -> dict[str, Any]:
    with rt.db.transaction() as s:
        return ReadService(s, rt.crypto, rt.audit).enterprise_detail(who, uscc)


ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/complaints", summary="本辖区投诉", description="可按状态筛选；overdue=true 只列超期未答复的。")
def region_complaints(
    who: StaffDep,
    rt: RuntimeDep,
    status: Annotated[str | None, Query(pattern="^(submitted|accepted|assigned|responded|closed)$")] = None,
    overdue: bool = False,
) -> list[dict[str, Any]]:
    with rt.db.transaction() as s:
        return complaints.of_region(s, who, status, overdue)


@router.get("/complaints/{complaint_id}", summary="投诉详情")
def get_complaint(complaint_id: ItemId, who: StaffDep, rt: RuntimeDep) -> dict[str, Any]:
    with rt.db.transaction() as s:
        return complaints.get(s, who, complaint_id)


@router.post("/complaints/{complaint_id}/accept", status_code=204, summary="受理投诉")
def accept_complaint(complaint_id: ItemId, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        complaints.accept(s, rt.audit, who, complaint_id)


class AssignIn(BaseModel):
    assignee_id: int = Field(ge=1, description="承办人（本辖区监管人员）的账户编号")


@router.post("/complaints/{complaint_id}/assign", status_code=204, summary="指派承办人")
def assign_complaint(complaint_id: ItemId, body: AssignIn, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        complaints.assign(s, rt.audit, who, complaint_id, body.assignee_id)


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


@router.post("/complaints/{complaint_id}/respond", status_code=204, summary="答复投诉（承办人）")
def respond_complaint(complaint_id: ItemId, body: TextIn, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        complaints.respond(s, rt.audit, who, complaint_id, body.text)


class CloseIn(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


@router.post("/complaints/{complaint_id}/close", status_code=204, summary="办结投诉")
def close_complaint(complaint_id: ItemId, body: CloseIn, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        complaints.close(s, rt.audit, who, complaint_id, body.note)


@router.get("/regulators", summary="可指派的本辖区监管人员")
def assignable(who: StaffDep, rt: RuntimeDep) -> list[dict[str, Any]]:
    with rt.db.transaction() as s:
        require(who, Perm.COMPLAINT_HANDLE)
        assert who.region_code is not None
        return [
            {
                "staff_id": a.id,
                "username": a.username,
                "display_name": a.display_name,
                "region_code": a.region_code,
            }
            for a in complaints.regulators_for(s, who.region_code)
        ]


StartQ = Annotated[date, Query(description="统计开始日期（含）")]
EndQ = Annotated[date, Query(description="统计结束日期（含）")]
RegionQ = Annotated[str | None, Query(pattern=r"^\d{6}$", description="本辖区内的下级区划，默认整个辖区")]


@router.get(
    "/statistics",
    summary="本辖区统计",
    description="维修量（按地区、企业、品牌、维修类别）、配件使用、评价、投诉、上传情况。见 docs/api.md。",
)
def statistics_api(
    who: StaffDep, rt: RuntimeDep, start: StartQ, end: EndQ, region: RegionQ = None
) -> dict[str, Any]:
    with rt.db.transaction() as s:
        return statistics.compute(s, who, statistics.Period(start, end), region)


@router.get(
    "/statistics/export",
    summary="导出统计（CSV 单表或 XLSX 全部表）",
    description="每次导出均记入审计日志。",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX: {}}}},
)
def statistics_export(
    who: StaffDep,
    rt: RuntimeDep,
    start: StartQ,
    end: EndQ,
    region: RegionQ = None,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "xlsx",
    table: Annotated[str, Query(description="CSV 时导出的表，如 by_enterprise")] = "by_region",
) -> Response:
    with rt.db.transaction() as s:
        return export_response(s, rt, who, statistics.Period(start, end), region, format, table)


def export_response(
    s: Session,
    rt: Runtime,
    who: Principal,
    period: statistics.Period,
    region: str | None,
    fmt: str,
    table: str,
) -> Response:
    """Shared with the portal page: compute, render the file, and audit the export in one transaction."""
    stats = statistics.compute(s, who, period, region)
    if fmt == "csv":
        data, media, name = exports.to_csv(stats, table), "text/csv; charset=utf-8", f"{table}.csv"
    elif fmt == "xlsx":
        data, media, name = exports.to_xlsx(stats), XLSX, "statistics.xlsx"
    else:
        raise AppError("EXPORT_FORMAT", 422)
    rt.audit.record(
        s,
        Event(
            who.actor_kind,
            str(who.id),
            "stats.export",
            f"region:{stats['scope']['region_code']}",
            "success",
            {
                "format": fmt,
                "table": table if fmt == "csv" else "all",
                "start": str(period.start),
                "end": str(period.end),
            },
            who.request_id,
            who.client_ip,
        ),
    )
    stem = f"统计-{stats['scope']['region_code']}-{period.start}-{period.end}-{name}"
    return Response(data, media_type=media, headers=attachment_headers(stem))


@router.post("/notices", status_code=201, summary="发布通知公告、政策法规、标准规范、技术信息（可带附件）")
def publish_notice(
    who: StaffDep,
    rt: RuntimeDep,
    kind: Annotated[str, Form(description="notice / policy / standard / technical")],
    title: Annotated[str, Form(max_length=200)],
    body: Annotated[str, Form(max_length=20000)],
    files: Annotated[list[UploadFile] | None, File(description="附件（PDF、PNG、JPEG）")] = None,
) -> dict[str, int]:
    uploaded = read_uploads(files or [], rt.settings.max_attachment_bytes)
    with rt.db.transaction() as s:
        nid = notices.publish(
            s, rt.objects, rt.audit, who, kind, title, body, uploaded, rt.settings.max_attachment_bytes
        )
    return {"notice_id": nid}


def read_uploads(files: list[UploadFile], max_bytes: int) -> list[notices.UploadedFile]:
    if len(files) > notices.MAX_ATTACHMENTS:  # before reading any of them
        raise AppError("TOO_MANY_FILES", 422, f"每条信息最多 {notices.MAX_ATTACHMENTS} 个附件")
    # an empty file input in a browser form arrives as one nameless, empty part
    return [
        notices.UploadedFile(f.filename or "附件", f.file.read(max_bytes + 1))
        for f in files
        if f.filename or f.size
    ]


@router.get("/claims", summary="待审核的行驶证认证申请（本辖区）")
def pending_claims(who: StaffDep, rt: RuntimeDep) -> list[dict[str, Any]]:
    with rt.db.transaction() as s:
        return claims.pending(s, who)


@router.get(
    "/claims/{claim_id}/photo",
    summary="查看行驶证照片（记入审计日志）",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def claim_photo(claim_id: ItemId, who: StaffDep, rt: RuntimeDep) -> Response:
    with rt.db.transaction() as s:
        media, data = claims.photo(s, rt.objects, rt.audit, who, claim_id)
    return Response(data, media_type=media, headers={"Cache-Control": "no-store"})


class ReviewIn(BaseModel):
    approve: bool
    note: str | None = Field(default=None, max_length=500)


@router.post(
    "/claims/{claim_id}/review",
    status_code=204,
    summary="审核行驶证认证申请",
    description="通过即认证该车完整档案；该车其他账户的绑定随之结束（视为车辆过户），原车主在其账户中收到通知，"
    "其对该车的授权一并撤销。",
)
def review_claim(claim_id: ItemId, body: ReviewIn, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        claims.review(s, rt.audit, who, claim_id, body.approve, body.note)
