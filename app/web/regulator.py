"""Regulator pages: staff sign-in (password + TOTP), complaints to handle, statistics with charts and
exports, publishing notices, reviewing 行驶证 claims and self-registered enterprises. Everything
within the regulator's region."""

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import RuntimeDep, client_ip
from app.api.http import claim_photo, export_response, read_uploads
from app.domain.clock import today_in_china
from app.domain.errors import AppError
from app.domain.reference import code_tables, regions
from app.security.rbac import Perm, Principal, can, region_prefix
from app.services import claims, complaints, directory, enterprises, notices, statistics
from app.web.session import COOKIES, WebStaff, safe_next, same_origin, set_cookie, signed_out
from app.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(same_origin)])


def _see(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303)


def _regulator(who: Principal) -> None:
    if not can(who, Perm.COMPLAINT_HANDLE):
        raise AppError("FORBIDDEN", 403, "该账户不是监管人员，无权使用监管工作台")


@router.get("/staff/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "regulator/login.html", form={"next": next}, errors=[])


@router.post("/staff/login", response_class=HTMLResponse)
def login(
    request: Request,
    rt: RuntimeDep,
    username: Annotated[str, Form(max_length=40)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    totp_code: Annotated[str, Form(max_length=10)] = "",
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    form = {"username": username.strip(), "next": next}
    missing = [
        t for v, t in ((username, "用户名"), (password, "密码"), (totp_code, "动态口令")) if not v.strip()
    ]
    if missing:
        return render(
            request, "regulator/login.html", status=422, form=form, errors=[f"请填写{'、'.join(missing)}"]
        )
    with rt.db.transaction() as s:
        result = rt.staff_auth.login(
            s, form["username"], password, totp_code, client_ip(request), request.state.request_id
        )
    if result.error is not None:
        return render(
            request,
            "regulator/login.html",
            status=result.error.status,
            form=form,
            errors=[result.error.detail],
            first_login=result.error.code == "ENROLMENT_REQUIRED",
        )
    assert result.token is not None
    response = _see(safe_next(next, "/regulator"))
    set_cookie(request, response, "staff", result.token, rt.settings.staff_session_max_seconds)
    return response


@router.get("/staff/first-login", response_class=HTMLResponse)
def first_login_page(request: Request) -> HTMLResponse:
    return render(request, "regulator/first_login.html", form={}, errors=[])


@router.post("/staff/first-login", response_class=HTMLResponse)
def first_login(
    request: Request,
    rt: RuntimeDep,
    username: Annotated[str, Form(max_length=40)] = "",
    activation_code: Annotated[str, Form(max_length=100)] = "",
    new_password: Annotated[str, Form(max_length=200)] = "",
    new_password2: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Step one: the activation code and the person's own password give the new TOTP secret, shown
    on the next page together with the form for step two."""
    form = {"username": username.strip()}
    if not (username.strip() and activation_code.strip() and new_password):
        errors = ["请填写用户名、激活码和新密码"]
    elif new_password != new_password2:
        errors = ["两次输入的新密码不一致"]
    else:
        with rt.db.transaction() as s:
            made, error = rt.staff_auth.begin_enrolment(
                s,
                form["username"],
                activation_code,
                new_password,
                client_ip(request),
                request.state.request_id,
            )
        if error is None and made is not None:
            return render(request, "regulator/first_login_totp.html", enrolment=made, errors=[])
        assert error is not None
        return render(
            request, "regulator/first_login.html", status=error.status, form=form, errors=[error.detail]
        )
    return render(request, "regulator/first_login.html", status=422, form=form, errors=errors)


@router.post("/staff/first-login/confirm", response_class=HTMLResponse)
def first_login_confirm(
    request: Request,
    rt: RuntimeDep,
    enrolment_token: Annotated[str, Form(max_length=100)] = "",
    totp_secret: Annotated[str, Form(max_length=64)] = "",
    totp_uri: Annotated[str, Form(max_length=300)] = "",
    totp_code: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Step two: a code from the new authenticator. Done, the person signs in as usual once the
    security administrator has given the account its role."""
    with rt.db.transaction() as s:
        result = rt.staff_auth.finish_enrolment(
            s, enrolment_token, totp_code, client_ip(request), request.state.request_id
        )
    if result.error is not None:
        # the page shows the same secret again (it came from this person's own step one)
        again = {"totp_secret": totp_secret, "totp_uri": totp_uri, "enrolment_token": enrolment_token}
        return render(
            request,
            "regulator/first_login_totp.html",
            status=result.error.status,
            enrolment=again,
            errors=[result.error.detail],
        )
    with rt.db.transaction() as s:
        if result.token:
            rt.staff_auth.logout(s, result.token)  # the portal signs in through its own login page
    return render(
        request,
        "regulator/login.html",
        form={},
        errors=[],
        done="首次登录已完成。安全管理员为账户分配角色后，请用新密码和动态口令登录。",
    )


@router.post("/staff/logout")
def logout(request: Request, rt: RuntimeDep) -> RedirectResponse:
    token = request.cookies.get(COOKIES["staff"])
    if token:
        with rt.db.transaction() as s:
            try:
                who: Principal | None = rt.staff_auth.principal(
                    s, token, client_ip(request), request.state.request_id
                )
            except AppError:
                who = None  # already ended: nothing to record
            rt.staff_auth.logout(s, token, who)
    return signed_out("staff")


@router.get("/regulator", response_class=HTMLResponse)
def home(
    request: Request,
    rt: RuntimeDep,
    who: WebStaff,
    status: Annotated[str, Query(max_length=12)] = "",
    overdue: bool = False,
) -> HTMLResponse:
    _regulator(who)
    if status and status not in complaints.STATUS_NAMES:
        status = ""
    with rt.db.transaction() as s:
        items = complaints.of_region(s, who, status or None, overdue)
        pending = claims.pending(s, who)
        pending_enterprises = len(enterprises.for_review(s, who))
    assert who.region_code is not None
    return render(
        request,
        "regulator/home.html",
        complaints=items,
        claims=pending,
        pending_enterprises=pending_enterprises,
        filter_status=status,
        overdue=overdue,
        statuses=complaints.STATUS_NAMES,
        region=directory.region_name(who.region_code),
    )


def _complaint_page(
    request: Request, rt: RuntimeDep, who: Principal, complaint_id: int, status: int = 200, **extra: object
) -> HTMLResponse:
    with rt.db.transaction() as s:
        c = complaints.get(s, who, complaint_id)
        staff = [
            {
                "id": a.id,
                "name": a.display_name or a.username,
                "region": directory.region_name(a.region_code or ""),
            }
            for a in complaints.regulators_for(s, c["region_code"])
        ]
    return render(
        request,
        "regulator/complaint.html",
        status=status,
        **{"c": c, "staff": staff, "me": who.id, "errors": [], **extra},
    )


@router.get("/regulator/complaints/{complaint_id}", response_class=HTMLResponse)
def complaint(complaint_id: int, request: Request, rt: RuntimeDep, who: WebStaff) -> HTMLResponse:
    _regulator(who)
    return _complaint_page(request, rt, who, complaint_id)


@router.post("/regulator/complaints/{complaint_id}/{step}", response_class=HTMLResponse)
def complaint_step(
    complaint_id: int,
    step: str,
    request: Request,
    rt: RuntimeDep,
    who: WebStaff,
    assignee_id: Annotated[str, Form(max_length=20)] = "",
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    _regulator(who)
    try:
        with rt.db.transaction() as s:
            if step == "accept":
                complaints.accept(s, rt.audit, who, complaint_id)
            elif step == "assign":
                if not assignee_id.isdigit():
                    raise AppError("ASSIGNEE_INVALID", 422, "请选择承办人")
                complaints.assign(s, rt.audit, who, complaint_id, int(assignee_id))
            elif step == "respond":
                if not text.strip():
                    raise AppError("TEXT_REQUIRED", 422, "请填写答复内容")
                complaints.respond(s, rt.audit, who, complaint_id, text)
            elif step == "close":
                complaints.close(s, rt.audit, who, complaint_id, text)
            else:
                raise AppError("NOT_FOUND", 404)
    except AppError as exc:
        if exc.status == 404:
            raise
        return _complaint_page(request, rt, who, complaint_id, status=exc.status, errors=[exc.detail])
    return _see(f"/regulator/complaints/{complaint_id}")


def _period(start: str, end: str) -> tuple[statistics.Period, list[str]]:
    """The form's dates, defaulting to the last 30 days; errors in Chinese for bad input."""
    today = today_in_china()
    errors = []
    try:
        s = date.fromisoformat(start) if start else today - timedelta(days=29)
        e = date.fromisoformat(end) if end else today
    except ValueError:
        return statistics.Period(today - timedelta(days=29), today), ["日期格式应为 年-月-日，如 2024-03-01"]
    period = statistics.Period(s, e)
    try:
        period.check()
    except AppError as exc:
        errors.append(exc.detail)
    return period, errors


def _sub_regions(scope: str) -> list[tuple[str, str]]:
    prefix = region_prefix(scope)
    return [(c, directory.region_name(c)) for c in regions() if c.startswith(prefix)]


@router.get("/regulator/statistics", response_class=HTMLResponse)
def stats_page(
    request: Request,
    rt: RuntimeDep,
    who: WebStaff,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    region: Annotated[str, Query(max_length=6)] = "",
) -> HTMLResponse:
    _regulator(who)
    assert who.region_code is not None
    period, errors = _period(start, end)
    stats = None
    if not errors:
        try:
            with rt.db.transaction() as s:
                stats = statistics.compute(s, who, period, region or None)
        except AppError as exc:
            errors.append(exc.detail)
    return render(
        request,
        "regulator/statistics.html",
        status=422 if errors else 200,
        stats=stats,
        errors=errors,
        tables=statistics.TABLES,
        form={"start": period.start.isoformat(), "end": period.end.isoformat(), "region": region},
        regions=_sub_regions(who.region_code),
    )


@router.get("/regulator/statistics/export")
def stats_export(
    rt: RuntimeDep,
    who: WebStaff,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    region: Annotated[str, Query(max_length=6)] = "",
    format: Annotated[str, Query(max_length=4)] = "xlsx",
    table: Annotated[str, Query(max_length=20)] = "by_region",
) -> Response:
    period, errors = _period(start, end)
    if errors:
        raise AppError("PERIOD_INVALID", 422, errors[0])
    with rt.db.transaction() as s:
        return export_response(s, rt, who, period, region or None, format, table)


@router.get("/regulator/notices/new", response_class=HTMLResponse)
def notice_form(request: Request, who: WebStaff) -> HTMLResponse:
    _regulator(who)
    return render(request, "regulator/notice_new.html", kinds=notices.KINDS, form={}, errors=[])


@router.post("/regulator/notices", response_class=HTMLResponse)
def publish(
    request: Request,
    rt: RuntimeDep,
    who: WebStaff,
    kind: Annotated[str, Form(max_length=12)] = "",
    title: Annotated[str, Form(max_length=400)] = "",
    body: Annotated[str, Form(max_length=20000)] = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    _regulator(who)
    form = {"kind": kind, "title": title.strip(), "body": body.strip()}
    errors = []
    if kind not in notices.KINDS:
        errors.append("请选择信息类别")
    if not form["title"]:
        errors.append("请填写标题")
    elif len(form["title"]) > 200:
        errors.append("标题最多 200 字")
    if not form["body"]:
        errors.append("请填写正文")
    if not errors:
        try:
            uploaded = read_uploads(files or [], rt.settings.max_attachment_bytes)
            with rt.db.transaction() as s:
                nid = notices.publish(
                    s, rt.objects, rt.audit, who, kind, form["title"], form["body"], uploaded,
                    rt.settings.max_attachment_bytes,
                )  # fmt: skip
            return _see(f"/notices/{nid}")
        except AppError as exc:
            errors.append(exc.detail)
    return render(
        request, "regulator/notice_new.html", status=422, kinds=notices.KINDS, form=form, errors=errors
    )


@router.get("/regulator/claims/{claim_id}/photo")
def photo(claim_id: int, rt: RuntimeDep, who: WebStaff) -> Response:
    return claim_photo(claim_id, who, rt)


@router.post("/regulator/claims/{claim_id}/review")
def review(
    claim_id: int,
    rt: RuntimeDep,
    who: WebStaff,
    decision: Annotated[str, Form(max_length=10)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    if decision not in ("approve", "reject"):
        raise AppError("VALIDATION_FAILED", 422, "请选择通过或不通过")
    with rt.db.transaction() as s:
        claims.review(s, rt.audit, who, claim_id, decision == "approve", note)
    return _see("/regulator")


ENTERPRISE_TABS = {"pending": "待审核", "refused": "未通过", "suspended": "已暂停"}


def _enterprises_page(
    request: Request,
    rt: RuntimeDep,
    who: Principal,
    status: str,
    code: int = 200,
    errors: list[str] | None = None,
) -> HTMLResponse:
    with rt.db.transaction() as s:
        items = enterprises.for_review(s, who, status)
    assert who.region_code is not None
    return render(
        request,
        "regulator/enterprises.html",
        status=code,
        items=items,
        tab=status,
        tabs=ENTERPRISE_TABS,
        categories=code_tables()["enterprise_category"],
        region=directory.region_name(who.region_code),
        region_name=directory.region_name,
        errors=errors or [],
    )


@router.get("/regulator/enterprises", response_class=HTMLResponse)
def enterprises_page(
    request: Request, rt: RuntimeDep, who: WebStaff, status: Annotated[str, Query(max_length=12)] = "pending"
) -> HTMLResponse:
    _regulator(who)
    return _enterprises_page(request, rt, who, status if status in ENTERPRISE_TABS else "pending")


@router.post("/regulator/enterprises/{uscc}/review", response_class=HTMLResponse)
def enterprise_review(
    uscc: str,
    request: Request,
    rt: RuntimeDep,
    who: WebStaff,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _regulator(who)
    tab = "refused" if decision == "approve-again" else "pending"
    try:
        if decision not in ("approve", "reject", "approve-again"):
            raise AppError("VALIDATION_FAILED", 422, "请选择通过或不通过")
        with rt.db.transaction() as s:
            enterprises.review(s, rt.audit, who, uscc.upper()[:18], decision != "reject", reason)
    except AppError as exc:
        if exc.status == 404:
            raise
        return _enterprises_page(request, rt, who, tab, exc.status, [exc.detail])
    return _see(f"/regulator/enterprises?status={tab}")
