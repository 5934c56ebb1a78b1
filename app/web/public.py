"""Public pages: home, the enterprise directory and each enterprise's page, published notices."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import RuntimeDep
from app.api.http import attachment_headers
from app.domain.reference import code_tables, regions
from app.services import directory, notices
from app.services.ratings import DIMENSIONS
from app.web.session import same_origin
from app.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(same_origin)])
_CSS = (Path(__file__).parent / "static" / "portal.css").read_bytes()


@router.get("/static/portal.css")
def stylesheet() -> Response:
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


def _region_choices() -> list[tuple[str, str]]:
    """Provinces and cities for the search form (counties are reached by their city)."""
    return [(c, directory.region_name(c)) for c in regions() if c.endswith("00")]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, rt: RuntimeDep) -> HTMLResponse:
    with rt.db.transaction() as s:
        latest = notices.listing(s, None, 1)["items"][:5]
    return render(request, "home.html", latest=latest, categories=code_tables()["enterprise_category"])


@router.get("/enterprises", response_class=HTMLResponse)
def search(
    request: Request,
    rt: RuntimeDep,
    name: Annotated[str, Query(max_length=100)] = "",
    region: Annotated[str, Query(max_length=6)] = "",
    category: Annotated[str, Query(max_length=4)] = "",
    scope: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> HTMLResponse:
    errors = []
    if region and region not in regions():
        errors.append("所选地区不存在")
    if category and category not in code_tables()["enterprise_category"]:
        errors.append("所选经营类别不存在")
    result = None
    if not errors:
        q = directory.SearchQuery(name or None, region or None, category or None, scope or None, page)
        with rt.db.transaction() as s:
            result = directory.search(s, q)
    return render(
        request,
        "enterprises.html",
        status=422 if errors else 200,
        errors=errors,
        result=result,
        form={"name": name, "region": region, "category": category, "scope": scope},
        regions=_region_choices(),
        categories=code_tables()["enterprise_category"],
    )


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
def enterprise(uscc: str, request: Request, rt: RuntimeDep) -> HTMLResponse:
    with rt.db.transaction() as s:
        e = directory.profile(s, uscc.upper()[:18])
    avg_rows = [{"name": t, "average": e["ratings"]["averages"][d]} for d, t in DIMENSIONS.items()]
    dist_rows = [
        {"name": t, **{f"s{s}": n for s, n in e["ratings"]["distribution"][d].items()}}
        for d, t in DIMENSIONS.items()
    ]
    return render(
        request, "enterprise.html", e=e, dimensions=DIMENSIONS, avg_rows=avg_rows, dist_rows=dist_rows
    )


@router.get("/notices", response_class=HTMLResponse)
def notice_list(
    request: Request,
    rt: RuntimeDep,
    kind: Annotated[str, Query(max_length=12)] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> HTMLResponse:
    with rt.db.transaction() as s:
        result = notices.listing(s, kind or None, page)
    return render(request, "notices.html", result=result, kinds=notices.KINDS, kind=kind)


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_detail(notice_id: int, request: Request, rt: RuntimeDep) -> HTMLResponse:
    with rt.db.transaction() as s:
        n = notices.detail(s, notice_id)
    return render(request, "notice.html", n=n)


@router.get("/notices/{notice_id}/attachments/{attachment_id}")
def notice_file(notice_id: int, attachment_id: int, rt: RuntimeDep) -> Response:
    with rt.db.transaction() as s:
        att, data = notices.attachment(s, rt.objects, notice_id, attachment_id)
    return Response(data, media_type=att.content_type, headers=attachment_headers(att.filename))
