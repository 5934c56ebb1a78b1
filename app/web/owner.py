"""Owner pages: register, sign in, bind a car (query code or 行驶证 photo), the car's file with its
PDF, grants to shops, rating a repair, complaints."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import RuntimeDep, client_ip
from app.api.http import vehicle_file
from app.domain.clock import today_in_china
from app.domain.errors import AppError
from app.domain.vin import vin_error
from app.services import claims, complaints, owners, ratings
from app.services.reads import ReadService
from app.web.session import WebOwner, end_session, safe_next, same_origin, signed_in, signed_out
from app.web.templating import render

router = APIRouter(prefix="/owner", include_in_schema=False, dependencies=[Depends(same_origin)])
Text = Annotated[str, Form(max_length=4000)]


def _see(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303)


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request) -> HTMLResponse:
    return render(request, "owner/register.html", form={}, errors=[])


@router.post("/register", response_class=HTMLResponse)
def register(
    request: Request,
    rt: RuntimeDep,
    phone: Annotated[str, Form(max_length=20)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    password2: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    form = {"phone": phone.strip(), "display_name": display_name.strip()}
    errors = []
    if not phone.strip():
        errors.append("请填写手机号")
    if len(password) < 8:
        errors.append("密码至少 8 位")
    elif password != password2:
        errors.append("两次输入的密码不一致")
    if not errors:
        try:
            with rt.db.transaction() as s:
                owners.register(s, rt.crypto, form["phone"], password, form["display_name"] or None)
        except AppError as exc:
            errors.append(exc.detail)
    if errors:
        return render(request, "owner/register.html", status=422, form=form, errors=errors)
    return render(
        request, "owner/login.html", form={"phone": form["phone"]}, errors=[], done="注册成功，请登录。"
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "owner/login.html", form={"next": next}, errors=[])


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    rt: RuntimeDep,
    phone: Annotated[str, Form(max_length=20)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    form = {"phone": phone.strip(), "next": next}
    if not phone.strip() or not password:
        return render(request, "owner/login.html", status=422, form=form, errors=["请填写手机号和密码"])
    ip = client_ip(request)
    try:
        with rt.db.transaction() as s:
            owner_id, gen = owners.login(
                s,
                rt.crypto,
                rt.limiter,
                rt.audit,
                form["phone"],
                password,
                ip,
                request.state.request_id,
                {"via": "portal"},
            )
    except AppError as exc:
        return render(request, "owner/login.html", status=exc.status, form=form, errors=[exc.detail])
    if owner_id is None:
        return render(request, "owner/login.html", status=401, form=form, errors=["手机号或密码错误"])
    return signed_in(request, rt, "owner", owner_id, gen, safe_next(next, "/owner"))


@router.post("/logout")
def logout(request: Request, rt: RuntimeDep) -> RedirectResponse:
    end_session(request, rt, "owner")
    return signed_out("owner")


def _account(
    request: Request,
    status: int = 200,
    errors: list[str] | None = None,
    close_errors: list[str] | None = None,
    done: str = "",
) -> HTMLResponse:
    """The account page: `errors` go with changing the password, `close_errors` with closing the account."""
    return render(
        request,
        "owner/account.html",
        status=status,
        errors=errors or [],
        close_errors=close_errors or [],
        done=done,
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, who: WebOwner, done: str = "") -> HTMLResponse:
    return _account(request, done="密码已修改，其他设备上的登录已失效。" if done == "password" else "")


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    password: Annotated[str, Form(max_length=200)] = "",
    new_password: Annotated[str, Form(max_length=200)] = "",
    new_password2: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if new_password != new_password2:
        return _account(request, 422, errors=["两次输入的新密码不一致"])
    try:
        with rt.db.transaction() as s:
            gen, error = owners.change_password(s, rt.limiter, rt.audit, who, password, new_password)
        if error is not None:
            raise error  # after the commit: a wrong current password counts towards the limit
    except AppError as exc:
        return _account(request, exc.status, errors=[exc.detail])
    assert gen is not None
    return signed_in(request, rt, "owner", who.id, gen, "/owner/account?done=password")


@router.post("/account/close", response_class=HTMLResponse)
def close_account(
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    password: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if confirm != "注销":
        return _account(request, 422, close_errors=["请在确认框中输入“注销”"])
    try:
        with rt.db.transaction() as s:
            photos, error = owners.close_account(s, rt.limiter, rt.audit, who, password)
        if error is not None:
            raise error
    except AppError as exc:
        return _account(request, exc.status, close_errors=[exc.detail])
    rt.objects.delete_many(photos)
    return signed_out("owner", "/?closed=1")


def _home(
    request: Request, rt: RuntimeDep, who: WebOwner, status: int = 200, **extra: object
) -> HTMLResponse:
    with rt.db.transaction() as s:
        ctx = {
            "vehicles": owners.vehicle_summaries(s, who.id),
            "claims": claims.of_owner(s, who),
            "grants": owners.grants_of_owner(s, who),
            "complaints": complaints.of_owner(s, who),
            "notifications": [n for n in owners.notifications(s, who.id) if not n["read"]],
        }
    return render(request, "owner/home.html", status=status, **{"form": {}, "errors": [], **ctx, **extra})


@router.get("", response_class=HTMLResponse)
def home(request: Request, rt: RuntimeDep, who: WebOwner, done: str = "") -> HTMLResponse:
    messages = {
        "bound": "车辆认证成功。",
        "claimed": "已提交行驶证照片，请等待监管部门审核。",
        "revoked": "已撤销授权。",
    }
    return _home(request, rt, who, done=messages.get(done, ""))


@router.post("/notifications/read")
def notifications_read(rt: RuntimeDep, who: WebOwner) -> RedirectResponse:
    with rt.db.transaction() as s:
        owners.mark_notifications_read(s, who.id)
    return _see("/owner")


@router.post("/vehicles", response_class=HTMLResponse)
def bind(
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    vin: Annotated[str, Form(max_length=40)] = "",
    query_code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    vin = vin.strip().upper()
    form = {"vin": vin, "query_code": query_code.strip()}
    errors = []
    if vin_error(vin):
        errors.append("车辆识别代号应为 17 位，且校验位正确（不含字母 I、O、Q）")
    if not query_code.strip():
        errors.append("请填写结算清单上的查询码")
    if not errors:
        try:
            with rt.db.transaction() as s:
                ok = owners.bind_vehicle(s, rt.limiter, rt.codes, who.id, vin, query_code.strip())
            if not ok:
                errors.append("查询码与车辆不匹配，请核对结算清单上的查询码")
        except AppError as exc:
            errors.append(exc.detail)
    if errors:
        return _home(request, rt, who, status=422, form=form, errors=errors)
    return _see(f"/owner/vehicles/{vin}")


@router.post("/claims", response_class=HTMLResponse)
def claim(
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    vin: Annotated[str, Form(max_length=40)] = "",
    plate_no: Annotated[str, Form(max_length=20)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    form = {"claim_vin": vin.strip().upper(), "plate_no": plate_no.strip().upper()}
    data = photo.file.read(rt.settings.max_attachment_bytes + 1) if photo is not None else b""
    try:
        if not data:
            raise AppError("ATTACHMENT_EMPTY", 400, "请选择行驶证照片")
        with rt.db.transaction() as s:
            claims.submit(
                s,
                rt.objects,
                who,
                form["claim_vin"],
                form["plate_no"],
                data,
                rt.settings.region_code,
                rt.settings.max_attachment_bytes,
            )
    except AppError as exc:
        return _home(request, rt, who, status=422, form=form, claim_errors=[exc.detail])
    return _see("/owner?done=claimed")


def _vehicle(
    request: Request, rt: RuntimeDep, who: WebOwner, vin: str, status: int = 200, **extra: object
) -> HTMLResponse:
    with rt.db.transaction() as s:
        hist = ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin)
        rated = ratings.for_records(s, [r["record_id"] for r in hist["records"]])
        bound = owners.binding(s, who.id, vin)
    window = rt.settings.rating_window_days
    today = today_in_china()
    for r in hist["records"]:
        r["rating"] = rated.get(r["record_id"])
        r["in_window"] = (today - r["settle_date"]).days <= window
        r["can_rate"] = r["rating"] is None and r["in_window"] and bound["full_history"]
    return render(
        request,
        "owner/vehicle.html",
        status=status,
        **{
            "h": hist,
            "window": window,
            "form": {},
            "errors": [],
            "max_days": rt.settings.grant_max_days,
            "binding": bound,
            "registry": rt.registry is not None,
            "verify_form": {},
            "verify_errors": [],
            **extra,
        },
    )


@router.get("/vehicles/{vin}", response_class=HTMLResponse)
def vehicle(vin: str, request: Request, rt: RuntimeDep, who: WebOwner, done: str = "") -> HTMLResponse:
    messages = {"granted": "已授权。", "rated": "感谢您的评价。", "verified": "完整档案认证成功。"}
    return _vehicle(request, rt, who, vin.upper()[:17], done=messages.get(done, ""))


@router.get("/vehicles/{vin}/file.pdf")
def vehicle_pdf(vin: str, rt: RuntimeDep, who: WebOwner) -> Response:
    return vehicle_file(vin.upper()[:17], who, rt)


@router.post("/vehicles/{vin}/grants", response_class=HTMLResponse)
def grant(
    vin: str,
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    enterprise_uscc: Annotated[str, Form(max_length=40)] = "",
    days: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    vin = vin.upper()[:17]
    form = {"enterprise_uscc": enterprise_uscc.strip().upper(), "days": days}
    max_days = rt.settings.grant_max_days
    errors = []
    if len(form["enterprise_uscc"]) != 18:
        errors.append("请填写 18 位统一社会信用代码")
    if not days.isdigit() or not 1 <= int(days) <= max_days:
        errors.append(f"授权天数应为 1 至 {max_days} 天")
    if not errors:
        try:
            with rt.db.transaction() as s:
                owners.grant(s, rt.audit, who, vin, form["enterprise_uscc"], int(days), max_days)
        except AppError as exc:
            errors.append(
                "未找到该统一社会信用代码的维修企业" if exc.code == "ENTERPRISE_NOT_FOUND" else exc.detail
            )
    if errors:
        return _vehicle(request, rt, who, vin, status=422, form=form, errors=errors)
    return _see(f"/owner/vehicles/{vin}?done=granted")


@router.post("/vehicles/{vin}/verification", response_class=HTMLResponse)
def verify(
    vin: str,
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    plate_no: Annotated[str, Form(max_length=20)] = "",
    owner_name: Annotated[str, Form(max_length=50)] = "",
    id_number: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The registry check from the car's page; the refusals say to use the 行驶证 photo instead."""
    vin = vin.upper()[:17]
    form = {"plate_no": plate_no.strip().upper(), "owner_name": owner_name.strip()}
    try:
        owners.verify_full(
            rt.db, rt.registry, rt.limiter, rt.crypto, rt.audit, who, vin, plate_no, owner_name, id_number
        )
    except AppError as exc:
        return _vehicle(
            request, rt, who, vin, status=exc.status, verify_form=form, verify_errors=[exc.detail]
        )
    return _see(f"/owner/vehicles/{vin}?done=verified")


@router.post("/grants/{grant_id}/revoke")
def revoke(grant_id: int, rt: RuntimeDep, who: WebOwner) -> RedirectResponse:
    with rt.db.transaction() as s:
        owners.revoke_grant(s, rt.audit, who, grant_id)
    return _see("/owner?done=revoked")


def _record_page(
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    record_id: int,
    template: str,
    status: int = 200,
    **extra: object,
) -> HTMLResponse:
    with rt.db.transaction() as s:
        if template == "owner/rate.html":
            head = ratings.rateable_record(s, who, record_id)
        else:
            head, _ = owners.visible_record(s, who.id, record_id)
        record = {
            "record_id": head.id,
            "vin": head.vin,
            "settlement_no": head.settlement_no,
            "settle_date": head.settle_date,
        }
    return render(
        request,
        template,
        status=status,
        **{"r": record, "dimensions": ratings.DIMENSIONS, "form": {}, "errors": [], **extra},
    )


@router.get("/records/{record_id}/rate", response_class=HTMLResponse)
def rate_page(record_id: int, request: Request, rt: RuntimeDep, who: WebOwner) -> HTMLResponse:
    return _record_page(request, rt, who, record_id, "owner/rate.html")


@router.post("/records/{record_id}/rate", response_class=HTMLResponse)
async def rate(record_id: int, request: Request, rt: RuntimeDep, who: WebOwner) -> Response:
    data = await request.form()
    form = {k: str(data.get(k, "")) for k in (*ratings.DIMENSIONS, "comment")}
    # the database and the page off the event loop
    return await run_in_threadpool(_rate, record_id, request, rt, who, form)


def _rate(record_id: int, request: Request, rt: RuntimeDep, who: WebOwner, form: dict[str, str]) -> Response:
    errors = [
        f"请为“{t}”选择 1 至 5 分"
        for d, t in ratings.DIMENSIONS.items()
        if form[d] not in {"1", "2", "3", "4", "5"}
    ]
    if len(form["comment"]) > 1000:
        errors.append("评语最多 1000 字")
    if not errors:
        scores = ratings.Scores(**{d: int(form[d]) for d in ratings.DIMENSIONS})
        try:
            with rt.db.transaction() as s:
                head = ratings.rateable_record(s, who, record_id)
                ratings.rate(s, who, record_id, scores, form["comment"], rt.settings.rating_window_days)
            return _see(f"/owner/vehicles/{head.vin}?done=rated")
        except AppError as exc:
            errors.append(exc.detail)
    return _record_page(request, rt, who, record_id, "owner/rate.html", status=422, form=form, errors=errors)


@router.get("/records/{record_id}/complain", response_class=HTMLResponse)
def complain_page(record_id: int, request: Request, rt: RuntimeDep, who: WebOwner) -> HTMLResponse:
    return _record_page(request, rt, who, record_id, "owner/complain.html")


@router.post("/records/{record_id}/complain", response_class=HTMLResponse)
def complain(
    record_id: int,
    request: Request,
    rt: RuntimeDep,
    who: WebOwner,
    title: Annotated[str, Form(max_length=200)] = "",
    content: Text = "",
) -> Response:
    form = {"title": title.strip(), "content": content.strip()}
    errors = []
    if not form["title"]:
        errors.append("请填写投诉标题")
    elif len(form["title"]) > 100:
        errors.append("投诉标题最多 100 字")
    if not form["content"]:
        errors.append("请填写投诉内容")
    if not errors:
        try:
            with rt.db.transaction() as s:
                cid = complaints.file(
                    s, who, record_id, form["title"], form["content"], rt.settings.complaint_deadline_days
                )
            return _see(f"/owner/complaints/{cid}")
        except AppError as exc:
            errors.append(exc.detail)
    return _record_page(
        request, rt, who, record_id, "owner/complain.html", status=422, form=form, errors=errors
    )


@router.get("/complaints/{complaint_id}", response_class=HTMLResponse)
def complaint(complaint_id: int, request: Request, rt: RuntimeDep, who: WebOwner) -> HTMLResponse:
    with rt.db.transaction() as s:
        c = complaints.get(s, who, complaint_id)
    return render(request, "owner/complaint.html", c=c)
