"""Shop staff pages: uploads with their status and errors, corrections (versions), ratings and
complaints with a reply, and the car histories owners have shared (other shops' names hidden)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import RuntimeDep, client_ip
from app.domain.errors import AppError, FieldError
from app.domain.reference import code_tables
from app.services import complaints, corrections, enterprises, ratings, records, shops
from app.services.reads import ReadService
from app.web.session import WebShop, end_session, safe_next, same_origin, signed_in, signed_out
from app.web.templating import render

router = APIRouter(prefix="/shop", include_in_schema=False, dependencies=[Depends(same_origin)])


def _see(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "shop/login.html", form={"next": next}, errors=[])


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    rt: RuntimeDep,
    username: Annotated[str, Form(max_length=40)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    form = {"username": username.strip(), "next": next}
    if not username.strip() or not password:
        return render(request, "shop/login.html", status=422, form=form, errors=["请填写用户名和密码"])
    try:
        with rt.db.transaction() as s:
            user = shops.authenticate(s, rt.limiter, form["username"], password, client_ip(request))
            user_id, gen = (user.id, user.token_generation) if user else (None, 0)
    except AppError as exc:
        return render(request, "shop/login.html", status=exc.status, form=form, errors=[exc.detail])
    if user_id is None:
        return render(request, "shop/login.html", status=401, form=form, errors=["用户名或密码错误"])
    return signed_in(request, rt, "shop", user_id, gen, safe_next(next, "/shop"))


@router.post("/logout")
def logout(request: Request, rt: RuntimeDep) -> RedirectResponse:
    end_session(request, rt, "shop")
    return signed_out("shop")


def _home(
    request: Request, rt: RuntimeDep, who: WebShop, status: int = 200, errors: list[str] | None = None
) -> HTMLResponse:
    assert who.enterprise_id is not None
    with rt.db.transaction() as s:
        ent = enterprises.enterprise(s, who.enterprise_id)
        ctx = {
            "enterprise": ent,
            "uploads": shops.uploads(s, who, limit=50),
            "rejections": shops.rejections(s, who, limit=50),
            "ratings": ratings.of_enterprise(s, who.enterprise_id, limit=50),
            "complaints": complaints.of_enterprise(s, who),
            "shared": shops.shared_with(s, who),
        }
    return render(
        request, "shop/home.html", status=status, dimensions=ratings.DIMENSIONS, errors=errors or [], **ctx
    )


@router.get("", response_class=HTMLResponse)
def home(request: Request, rt: RuntimeDep, who: WebShop) -> HTMLResponse:
    return _home(request, rt, who)


@router.post("/ratings/{rating_id}/reply", response_class=HTMLResponse)
def reply_rating(
    rating_id: int,
    request: Request,
    rt: RuntimeDep,
    who: WebShop,
    text: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        with rt.db.transaction() as s:
            ratings.reply(s, who, rating_id, text)
    except AppError as exc:
        return _home(request, rt, who, status=exc.status, errors=[exc.detail])
    return _see("/shop#ratings")


@router.post("/complaints/{complaint_id}/reply", response_class=HTMLResponse)
def reply_complaint(
    complaint_id: int,
    request: Request,
    rt: RuntimeDep,
    who: WebShop,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        with rt.db.transaction() as s:
            complaints.enterprise_reply(s, who, complaint_id, text)
    except AppError as exc:
        return _home(request, rt, who, status=exc.status, errors=[exc.detail])
    return _see("/shop#complaints")


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record(record_id: int, request: Request, rt: RuntimeDep, who: WebShop) -> HTMLResponse:
    with rt.db.transaction() as s:
        r = shops.record_versions(s, who, record_id)
    return render(request, "shop/record.html", r=r)


def _correction_form(
    request: Request,
    values: dict[str, str],
    record_id: int | None,
    status: int = 200,
    errors: list[FieldError] | None = None,
) -> HTMLResponse:
    codes = code_tables()
    return render(
        request,
        "shop/correct.html",
        status=status,
        v=values,
        record_id=record_id,
        item_rows=corrections.rows(values, "items"),
        part_rows=corrections.rows(values, "parts"),
        field_errors={e.field: e.message for e in errors or []},
        errors=[f"{e.field}：{e.message}" for e in errors or []],
        repair_types=codes["repair_type"],
        part_kinds=codes["part_kind"],
        plate_colours=codes["plate_colour"],
        use_natures=codes["use_nature"],
        fuel_types=codes["fuel_type"],
    )


@router.get("/records/{record_id}/correct", response_class=HTMLResponse)
def correct_record(record_id: int, request: Request, rt: RuntimeDep, who: WebShop) -> HTMLResponse:
    with rt.db.transaction() as s:
        values = corrections.form_values(corrections.latest_body(s, who, record_id))
    return _correction_form(request, values, record_id)


@router.get("/correct", response_class=HTMLResponse)
def correct_rejected(
    request: Request, rt: RuntimeDep, who: WebShop, settlement_no: Annotated[str, Query(max_length=50)] = ""
) -> Response:
    """From a rejected upload: the record it would correct if there is one, else a blank form (a
    refused upload's content is not kept, only its number and errors)."""
    assert who.enterprise_id is not None
    try:
        with rt.db.transaction() as s:
            head = records.find(s, who.enterprise_id, settlement_no)
        return _see(f"/shop/records/{head.id}/correct")
    except AppError:  # not uploaded yet: the correction is a first upload
        pass
    return _correction_form(request, {"settlement_no": settlement_no}, None)


@router.post("/correct", response_class=HTMLResponse)
async def submit_correction(request: Request, rt: RuntimeDep, who: WebShop) -> Response:
    # async only to read the form (its field count is capped by Starlette, 1000); the rest, database
    # and page included, runs in the thread pool, never on the event loop
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    return await run_in_threadpool(_submit_correction, request, rt, who, form)


def _submit_correction(request: Request, rt: RuntimeDep, who: WebShop, form: dict[str, str]) -> Response:
    done = corrections.submit(rt, who, corrections.from_form(form))  # from_form refuses too many rows
    if done.record_id is None:
        rid = form.get("record_id", "")
        return _correction_form(request, form, int(rid) if rid.isascii() and rid.isdigit() else None, 422,
                                done.errors)
    return _see(f"/shop/records/{done.record_id}")


@router.get("/vehicles/{vin}", response_class=HTMLResponse)
def shared_vehicle(vin: str, request: Request, rt: RuntimeDep, who: WebShop) -> HTMLResponse:
    with rt.db.transaction() as s:
        hist = ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin.upper()[:17])
    return render(request, "shop/vehicle.html", h=hist)
