"""Public API: the enterprise directory and published notices. No login, no personal data."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from app.api import http, schemas
from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.services import directory, notices

router = APIRouter(prefix="/api/v1/public", tags=["公众"], responses=ERROR_RESPONSES)

UsccPath = Annotated[str, Path(pattern=r"^[0-9A-Z]{18}$", description="统一社会信用代码")]


@router.get(
    "/enterprises",
    summary="查找维修企业",
    description="按名称、地区（行政区划代码，含下级）、经营类别、经营范围查找；按综合评分排序，每页 20 条。",
)
def search_enterprises(
    rt: RuntimeDep,
    name: Annotated[str | None, Query(max_length=100, description="企业名称（包含）")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$", description="行政区划代码")] = None,
    category: Annotated[str | None, Query(max_length=4, description="经营类别代码")] = None,
    scope: Annotated[str | None, Query(max_length=100, description="经营范围（包含）")] = None,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> schemas.DirectoryPageOut:
    with rt.db.transaction() as s:
        return directory.search(s, directory.SearchQuery(name, region, category, scope, page))


@router.get(
    "/enterprises/{uscc}",
    summary="维修企业公开信息",
    description=(
        "基本信息与资质、各项评价平均分与评价数、在同地区同类别企业中的排名、最近评价。"
        "不含联系人等个人信息。"
    ),
)
def public_enterprise(uscc: UsccPath, rt: RuntimeDep) -> schemas.EnterpriseProfileOut:
    with rt.db.transaction() as s:
        return directory.profile(s, uscc)


@router.get("/notices", summary="通知公告、政策法规、标准规范、技术信息")
def list_notices(
    rt: RuntimeDep,
    kind: Annotated[str | None, Query(description="notice / policy / standard / technical")] = None,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> schemas.NoticePageOut:
    with rt.db.transaction() as s:
        return notices.listing(s, kind, page)


@router.get("/notices/{notice_id}", summary="信息详情（含附件列表）")
def get_notice(notice_id: Annotated[int, Path(ge=1, le=2**63 - 1)], rt: RuntimeDep) -> schemas.NoticeOut:
    with rt.db.transaction() as s:
        return notices.detail(s, notice_id)


@router.get(
    "/notices/{notice_id}/attachments/{attachment_id}",
    summary="下载信息附件",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}}},
)
def notice_attachment(
    notice_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    attachment_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    rt: RuntimeDep,
) -> Response:
    with rt.db.transaction() as s:
        att, data = notices.attachment(s, rt.objects, notice_id, attachment_id)
    return Response(data, media_type=att.content_type, headers=http.attachment_headers(att.filename))


