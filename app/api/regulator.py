"""Regulator API: histories and enterprises of the region, complaints, statistics and exports, notices,
and 行驶证 claims. Everything is scoped to the regulator's region and the sensitive reads are audited."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api import http, schemas
from app.api.deps import RuntimeDep, StaffDep
from app.api.errors import ERROR_RESPONSES
from app.security.rbac import Perm, require
from app.services import claims, complaints, enterprises, exports, notices, statistics
from app.services.reads import ReadService

router = APIRouter(prefix="/api/v1/regulator", tags=["监管"], responses=ERROR_RESPONSES)

VinPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPR-Z]{17}$", description="车辆识别代号")]
UsccPath = Annotated[str, Path(pattern=r"^[0-9A-Z]{18}$", description="统一社会信用代码")]


@router.get(
    "/vehicles/{vin}/history",
    response_model=schemas.HistoryOut,  # answered by json_body after the commit: the schema is the doc
    summary="车辆维修档案（仅本辖区企业的记录）",
    description="只返回管辖区域内企业的维修记录；每次查询均记入审计日志。",
)
def history(vin: VinPath, who: StaffDep, rt: RuntimeDep) -> Response:
    return http.history_response(rt, who, vin)


@router.get(
    "/enterprises",
    summary="本辖区待审核（或其他状态）的企业",
    description="默认列出待审核（pending）的自行注册企业，附道路运政许可名册中该统一社会信用代码的记录（如有）。",
)
def enterprises_for_review(
    who: StaffDep,
    rt: RuntimeDep,
    status: Annotated[str, Query(pattern="^(pending|active|refused|suspended)$")] = "pending",
) -> list[schemas.EnterpriseReviewOut]:
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
) -> schemas.StatusOut:
    with rt.db.transaction() as s:
        status = enterprises.review(s, rt.audit, who, uscc, body.approve, body.reason)
    return {"status": status}


@router.get("/enterprises/{uscc}", summary="企业详情（含联系人，仅本辖区）")
def enterprise(uscc: UsccPath, who: StaffDep, rt: RuntimeDep) -> schemas.EnterpriseDetailOut:
    with rt.db.transaction() as s:
        return ReadService(s, rt.crypto, rt.audit).enterprise_detail(who, uscc)


ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/complaints", summary="本辖区投诉", description="可按状态筛选；overdue=true 只列超期未答复的。")
def region_complaints(
    who: StaffDep,
    rt: RuntimeDep,
    status: Annotated[str | None, Query(pattern="^(submitted|accepted|assigned|responded|closed)$")] = None,
    overdue: bool = False,
) -> list[schemas.ComplaintOut]:
    with rt.db.transaction() as s:
        return complaints.of_region(s, who, status, overdue)


@router.get("/complaints/{complaint_id}", summary="投诉详情")
def get_complaint(complaint_id: ItemId, who: StaffDep, rt: RuntimeDep) -> schemas.ComplaintOut:
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
def assignable(who: StaffDep, rt: RuntimeDep) -> list[schemas.RegulatorOut]:
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
) -> schemas.StatisticsOut:
    with rt.db.transaction() as s:
        return statistics.compute(s, who, statistics.Period(start, end), region)


@router.get(
    "/statistics/export",
    summary="导出统计（CSV 单表或 XLSX 全部表）",
    description="每次导出均记入审计日志。",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, exports.XLSX: {}}}},
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
        return http.export_response(s, rt, who, statistics.Period(start, end), region, format, table)


@router.post("/notices", status_code=201, summary="发布通知公告、政策法规、标准规范、技术信息（可带附件）")
def publish_notice(
    who: StaffDep,
    rt: RuntimeDep,
    kind: Annotated[str, Form(description="notice / policy / standard / technical")],
    title: Annotated[str, Form(max_length=200)],
    body: Annotated[str, Form(max_length=20000)],
    files: Annotated[list[UploadFile] | None, File(description="附件（PDF、PNG、JPEG）")] = None,
) -> schemas.NoticeIdOut:
    uploaded = http.read_uploads(files or [], rt.settings.max_attachment_bytes)
    with rt.db.transaction() as s:
        nid = notices.publish(
            s, rt.objects, rt.audit, who, kind, title, body, uploaded, rt.settings.max_attachment_bytes
        )
    return {"notice_id": nid}


@router.get("/claims", summary="待审核的行驶证认证申请（本辖区）")
def pending_claims(who: StaffDep, rt: RuntimeDep) -> list[schemas.ClaimOut]:
    with rt.db.transaction() as s:
        return claims.pending(s, who)


@router.get(
    "/claims/{claim_id}/photo",
    summary="查看行驶证照片（记入审计日志）",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def claim_photo(claim_id: ItemId, who: StaffDep, rt: RuntimeDep) -> Response:
    return http.claim_photo(claim_id, who, rt)


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
