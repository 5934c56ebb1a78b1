"""Adapter for the envelope shop software already speaks to provincial platforms (carhealth/*).

Existing shop software switches to us by pointing its base URL at `/api/national/`: the same services
and validation run behind it, and answers come back in its `respInfo` shape (code "1" = success).
Clients often send JSON labelled text/html, so the body is parsed whatever the content type says.
The handlers are async only to read that raw body; parsing, argon2 and the database then run in the
thread pool (`_enveloped`), so a slow login or upload never holds up the event loop.
"""

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool

from app.api import schemas
from app.api.collection import issue_token
from app.api.deps import RuntimeDep, client_ip, enterprise_from_token
from app.domain.enterprise import EnterpriseIn
from app.domain.errors import AppError, FieldError, message
from app.domain.record import MAX_ITEMS, MAX_PARTS, field_errors
from app.runtime import Runtime
from app.services import enterprises
from app.services.collection import upload

router = APIRouter(prefix="/api/national", tags=["兼容接口（现有门店软件）"])

_ENVELOPE_DOC = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": '{"transaction": {"header": {"date": "yyyyMMdd", "time": "HHmmss"}, '
                    '"body": {"reqInfo": {...}}}}',
                }
            }
        }
    }
}

# their field → our field, for the register call and for naming fields in errors
_COMPANY = {
    "companyunifiedsocialcreditidentifier": "uscc",
    "companyname": "name",
    "companyroadtransportationlicense": "licence_no",
    "companycategory": "category",
    "companybusinessscope": "business_scope",
    "companyadministrativedivisioncode": "region_code",
    "companyaddress": "address",
    "companylinkmanname": "contact_name",
    "companylinkmantel": "contact_phone",
}
_RECORD_FIELDS = {
    "settlement_no": "basicInfo.costlistcode",
    "vehicle.vin": "basicInfo.vin",
    "vehicle.plate_no": "basicInfo.vehicleplatenumber",
    "repair_date": "basicInfo.repairdate",
    "settle_date": "basicInfo.settledate",
    "mileage_km": "basicInfo.repairmileage",
    "fault_description": "basicInfo.faultdescription",
    "repair_type": "basicInfo.repairtype",
}


# the envelope shop software reads: documented by a model, answered as JSONResponse by the handlers
ENVELOPED: dict[str, Any] = {"openapi_extra": _ENVELOPE_DOC, "response_model": schemas.NationalOut}

def _ok(**info: Any) -> JSONResponse:
    return JSONResponse({"respInfo": {"code": "1", "message": "成功", **info}})


def _fail(code: str, detail: str | None = None, errors: list[FieldError] | None = None) -> JSONResponse:
    errs = [e.as_dict() for e in errors or []]
    text = detail or "；".join(f"{e.field}: {e.message}" for e in errors or []) or message(code)
    return JSONResponse({"respInfo": {"code": "0", "errcode": code, "message": text, "errors": errs}})


def unavailable(code: str, text: str, retry_after: int) -> dict[str, Any]:
    """The envelope of a temporary outage (HTTP 503 with Retry-After, app.api.errors): not a refusal of
    the record, so shop software keeps it and sends it again later."""
    info = {"code": "0", "errcode": code, "message": text, "errors": [], "retry_after": retry_after}
    return {"respInfo": info}


def _enveloped(
    handler: Callable[[Request, Runtime, dict[str, Any]], JSONResponse],
) -> Callable[[Request, Runtime], Awaitable[JSONResponse]]:
    """The route reads the body on the event loop and runs `handler` (parsing included) in the thread
    pool; every failure, whatever raised it, is answered in the envelope shop software understands."""

    def run(request: Request, rt: Runtime, raw: bytes) -> JSONResponse:
        try:
            return handler(request, rt, _req_info(raw))
        except AppError as exc:
            return _fail(exc.code, exc.detail, exc.fields)
        except DataError:
            return _fail("VALIDATION_FAILED", errors=[FieldError.of("reqInfo", "TEXT_INVALID")])

    async def wrapper(request: Request, rt: RuntimeDep) -> JSONResponse:
        raw = await request.body()  # at most max_body_bytes (the body-size middleware)
        return await run_in_threadpool(run, request, rt, raw)

    # the route's name and doc, but its own signature: `info` is not a request parameter
    wrapper.__name__, wrapper.__qualname__ = handler.__name__, handler.__qualname__
    wrapper.__doc__ = handler.__doc__
    return wrapper


def _req_info(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
        info = body["transaction"]["body"]["reqInfo"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AppError("MALFORMED_JSON", 400, "请求体不是合法的 transaction 报文") from exc
    if not isinstance(info, dict):
        raise AppError("MALFORMED_JSON", 400, "reqInfo 必须是对象")
    return info


def _yyyymmdd(value: Any) -> Any:
    """Their dates are yyyyMMdd; anything else is passed on for the validator to reject with DATE_FORMAT."""
    if isinstance(value, str) and len(value) == 8 and value.isdigit():
        try:
            return datetime.strptime(value, "%Y%m%d").date().isoformat()
        except ValueError:
            return value
    return value


def _to_record(info: dict[str, Any]) -> dict[str, Any]:
    basic = info.get("basicInfo") or {}
    if not isinstance(basic, dict):
        basic = {}
    parts = info.get("vehiclepartslist") or []
    items = info.get("repairprojectlist") or []
    # a record's own limits, before building anything from the lists
    lists = (("vehiclepartslist", parts, MAX_PARTS), ("repairprojectlist", items, MAX_ITEMS))
    for field, rows, limit in lists:
        if isinstance(rows, list) and len(rows) > limit:
            too_many = FieldError(field, "TOO_MANY_ITEMS", f"最多 {limit} 条（收到 {len(rows)} 条）")
            raise AppError("VALIDATION_FAILED", 422, fields=[too_many])
    rec: dict[str, Any] = {
        "settlement_no": basic.get("costlistcode"),
        "vehicle": {"vin": basic.get("vin"), "plate_no": basic.get("vehicleplatenumber") or None},
        "repair_date": _yyyymmdd(basic.get("repairdate")),
        "settle_date": _yyyymmdd(basic.get("settledate")),
        "mileage_km": basic.get("repairmileage"),
        "fault_description": basic.get("faultdescription"),
        "repair_type": basic.get("repairtype") or None,
        "parts": [
            {
                "name": p.get("partsname"),
                "code": p.get("partscode") or None,
                "quantity": p.get("partsquantity"),
            }
            for p in parts
            if isinstance(p, dict)
        ],
        "items": [
            {"name": i.get("repairproject"), "hours": i.get("workinghours") or 0}
            for i in items
            if isinstance(i, dict)
        ],
    }
    return rec


def _their_field(ours: str) -> str:
    if ours in _RECORD_FIELDS:
        return _RECORD_FIELDS[ours]
    head, _, rest = ours.partition(".")
    if head == "parts":
        return "vehiclepartslist." + rest.replace("name", "partsname").replace("quantity", "partsquantity")
    if head == "items":
        return "repairprojectlist." + rest.replace("name", "repairproject").replace("hours", "workinghours")
    return ours


def server_time() -> str:
    return str(int(time.time() * 1000))


# Clients ask for the time before anything else, at either path and with either method.
for _path in ("/time", "/carhealth/time"):
    for _method in ("GET", "POST"):
        router.add_api_route(
            _path,
            server_time,
            methods=[_method],
            response_class=PlainTextResponse,
            summary="服务器时间（毫秒）",
            operation_id=f"national{_path.replace('/', '_')}_{_method.lower()}",
        )


@router.post("/carhealth/register", summary="企业注册（兼容格式）", **ENVELOPED)
@_enveloped
def register(request: Request, rt: RuntimeDep, info: dict[str, Any]) -> JSONResponse:
    password = info.get("companypassword")
    if not isinstance(password, str) or len(password) < 8:
        return _fail("PASSWORD_WEAK", errors=[FieldError.of("companypassword", "PASSWORD_WEAK")])
    data = {ours: info.get(theirs) or None for theirs, ours in _COMPANY.items()}
    try:
        ent = EnterpriseIn.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        back = {v: k for k, v in _COMPANY.items()}
        errs = [FieldError(back.get(e.field, e.field), e.code, e.message) for e in field_errors(exc.errors())]
        return _fail("VALIDATION_FAILED", errors=errs)
    with rt.db.transaction() as s:
        reg = enterprises.register(s, rt.audit, ent, secret=password, client_ip=client_ip(request))
    if reg.status == "active":
        return _ok(companycode=reg.credential.key_id, status="active", statusname="已通过")
    # code "1": the registration is taken and the software must keep its companycode; it may not get
    # a token yet, and says so in the message (token and record answer ENTERPRISE_PENDING until approved)
    note = "注册成功，待审核（pending approval）：须经所在地监管部门审核通过后才能获取令牌、上传记录"
    return _ok(companycode=reg.credential.key_id, status="pending", statusname="待审核", message=note)


@router.post("/carhealth/token", summary="获取令牌（兼容格式）", **ENVELOPED)
@_enveloped
def token(request: Request, rt: RuntimeDep, info: dict[str, Any]) -> JSONResponse:
    code, password = info.get("companycode"), info.get("companypassword")
    if not isinstance(code, str) or not isinstance(password, str) or not code or len(code) > 40:
        return _fail("AUTH_INVALID_CREDENTIALS")
    issued = issue_token(rt, code, password, client_ip(request))
    return _ok(access_token=issued["access_token"], expires_at=issued["expires_at"])


@router.post("/carhealth/record", summary="上传维修记录（兼容格式）", **ENVELOPED)
@_enveloped
def record(request: Request, rt: RuntimeDep, info: dict[str, Any]) -> JSONResponse:
    tok = info.get("access_token")
    if not isinstance(tok, str) or not tok:
        return _fail("AUTH_REQUIRED")
    caller = enterprise_from_token(rt, tok)
    outcome = upload(rt, caller.enterprise_id, [_to_record(info)], source="national", complete=False)[0]
    if outcome.result is None:
        errs = [FieldError(_their_field(e.field), e.code, e.message) for e in outcome.errors]
        return _fail("VALIDATION_FAILED", errors=errs)
    r = outcome.result
    return _ok(
        recordid=str(r.record_id),
        version=r.version,
        querycode=r.query_code,
        outcome=r.outcome,
        warnings=[{"code": w, "message": message(w)} for w in r.warnings],
    )
