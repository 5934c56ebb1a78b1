"""Owner API: accounts, binding a car (a query code: that shop's records; the registry check or a
行驶证 photo: the whole history), the car's history, grants, ratings, complaints, notifications."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api import http, schemas
from app.api.deps import OwnerDep, RuntimeDep, client_ip
from app.api.errors import ERROR_RESPONSES, ErrorBody
from app.domain.errors import AppError
from app.services import claims, complaints, owners, ratings
from app.services.reads import ReadService

router = APIRouter(prefix="/api/v1/owner", tags=["车主"], responses=ERROR_RESPONSES)

VinPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPR-Z]{17}$", description="车辆识别代号")]
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class AccountIn(BaseModel):
    phone: str = Field(max_length=20, description="手机号（作为登录名）", examples=["13800138000"])
    password: str = Field(max_length=200, description="密码，至少 8 位")
    display_name: str | None = Field(default=None, max_length=50, description="姓名或称呼（加密存储）")
    id_number: str | None = Field(
        default=None, min_length=18, max_length=18, description="居民身份证号码，可选（加密存储）"
    )


class AccountOut(BaseModel):
    owner_id: int


class LoginIn(BaseModel):
    phone: str = Field(max_length=20)
    password: str = Field(max_length=200)


class OwnerTokenOut(BaseModel):
    access_token: str
    expires_at: int


class BindIn(BaseModel):
    vin: str = Field(pattern=r"^[0-9A-HJ-NPR-Z]{17}$", description="车辆识别代号")
    query_code: str = Field(min_length=1, max_length=20, description="结算清单上打印的查询码")


@router.post("/accounts", status_code=201, summary="车主注册")
def create_account(body: AccountIn, rt: RuntimeDep) -> AccountOut:
    with rt.db.transaction() as s:
        owner_id = owners.register(s, rt.crypto, body.phone, body.password, body.display_name, body.id_number)
    return AccountOut(owner_id=owner_id)


@router.post(
    "/token",
    summary="车主登录",
    responses={429: {"model": ErrorBody, "description": "AUTH_RATE_LIMITED"}},
)
def login(body: LoginIn, rt: RuntimeDep, request: Request) -> OwnerTokenOut:
    ip = client_ip(request)
    with rt.db.transaction() as s:
        owner_id, gen = owners.login(
            s, rt.crypto, rt.limiter, rt.audit, body.phone, body.password, ip, request.state.request_id, {}
        )
    if owner_id is None:
        raise AppError("AUTH_INVALID_CREDENTIALS", 401, "手机号或密码错误")
    tok, exp = rt.tokens.issue("owner", owner_id, rt.settings.owner_token_ttl_seconds, generation=gen)
    return OwnerTokenOut(access_token=tok, expires_at=exp)


@router.post(
    "/logout",
    status_code=204,
    summary="退出登录",
    description="本账户已签发的全部令牌随即失效（各设备均需重新登录）。",
)
def logout(who: OwnerDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        owners.logout(s, rt.audit, who)


class PasswordChangeIn(BaseModel):
    password: str = Field(max_length=200, description="当前密码")
    new_password: str = Field(max_length=200, description="新密码，至少 8 位")


@router.post(
    "/password",
    summary="修改密码",
    description="须提供当前密码；修改后其他会话全部失效，应答中的新令牌供本会话继续使用。",
    responses={403: {"model": ErrorBody, "description": "PASSWORD_WRONG"}},
)
def change_password(body: PasswordChangeIn, who: OwnerDep, rt: RuntimeDep) -> OwnerTokenOut:
    with rt.db.transaction() as s:
        gen, error = owners.change_password(s, rt.limiter, rt.audit, who, body.password, body.new_password)
    # committed first: a wrong current password counts towards the limit
    if error is not None:
        raise error
    assert gen is not None
    tok, exp = rt.tokens.issue("owner", who.id, rt.settings.owner_token_ttl_seconds, generation=gen)
    return OwnerTokenOut(access_token=tok, expires_at=exp)


class CloseIn(BaseModel):
    password: str = Field(max_length=200, description="当前密码，确认注销")


@router.post(
    "/account/close",
    status_code=204,
    summary="注销账户",
    description=(
        "依《个人信息保护法》删除本人个人信息：手机号、姓名、身份证号码（密文及检索哈希）、密码、"
        "车辆认证、对企业的授权（终止）、行驶证照片；待审核的认证申请撤回。维修记录依规定保留；"
        "评价和投诉保留，但不再关联任何个人信息。注销不可恢复，记入审计日志。"
    ),
    responses={403: {"model": ErrorBody, "description": "PASSWORD_WRONG"}},
)
def close_account(body: CloseIn, who: OwnerDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        photos, error = owners.close_account(s, rt.limiter, rt.audit, who, body.password)
    if error is not None:
        raise error
    rt.objects.delete_many(photos)


@router.post(
    "/vehicles",
    status_code=201,
    summary="用查询码绑定车辆（仅该企业的记录）",
    description="以维修结算清单上的查询码绑定车辆：可查看**出具该查询码的维修企业**对该车的记录，"
    "不含其他企业的记录。多家企业的查询码各自增加该企业的记录。查看完整档案、授权企业、评价须先完成"
    "完整档案认证（POST /api/v1/owner/vehicles/{vin}/verification 或行驶证照片审核）。"
    "车辆过户（新车主完成完整档案认证）后，早于过户上传的维修的查询码不能再用于绑定（QUERY_CODE_SUPERSEDED）。",
    responses={403: {"model": ErrorBody, "description": "QUERY_CODE_INVALID / QUERY_CODE_SUPERSEDED"}},
)
def bind_vehicle(body: BindIn, who: OwnerDep, rt: RuntimeDep) -> schemas.VinOut:
    with rt.db.transaction() as s:
        ok = owners.bind_vehicle(s, rt.limiter, rt.codes, who.id, body.vin, body.query_code)
    if not ok:
        raise AppError("QUERY_CODE_INVALID", 403)
    return {"vin": body.vin}


@router.get("/vehicles", summary="我的车辆", description="当前有效绑定的车辆识别代号（过户后结束的不含）。")
def my_vehicles(who: OwnerDep, rt: RuntimeDep) -> list[str]:
    with rt.db.transaction() as s:
        return owners.vehicles(s, who.id)


class ScopeEnterpriseOut(BaseModel):
    uscc: str
    name: str
    bound_at: datetime


class BindingOut(BaseModel):
    vin: str
    full_history: bool = Field(description="true：已完成完整档案认证，可查看全部记录、授权企业、评价")
    full_via: str | None = Field(description="registry 车辆登记信息核验；claim 行驶证照片审核")
    full_at: datetime | None
    enterprises: list[ScopeEnterpriseOut] = Field(description="以查询码绑定的企业：可查看这些企业的记录")


@router.get(
    "/vehicles/{vin}",
    summary="车辆绑定范围",
    responses={403: {"model": ErrorBody, "description": "VEHICLE_NOT_BOUND"}},
)
def my_vehicle(vin: VinPath, who: OwnerDep, rt: RuntimeDep) -> BindingOut:
    with rt.db.transaction() as s:
        return BindingOut(**owners.binding(s, who.id, vin))


class VerificationIn(BaseModel):
    plate_no: str = Field(max_length=10, description="号牌号码（行驶证）", examples=["苏A12345"])
    owner_name: str = Field(min_length=1, max_length=50, description="机动车所有人姓名（行驶证）")
    id_number: str = Field(
        min_length=18, max_length=18, description="所有人居民身份证号码；核验通过后保存到本账户（加密）"
    )


@router.post(
    "/vehicles/{vin}/verification",
    status_code=201,
    summary="完整档案认证（车辆登记信息核验）",
    description="向公安交管车辆登记信息核验：号牌、所有人姓名、身份证号码与该车登记信息一致即认证通过，"
    "可查看该车全部维修记录、授权维修企业、评价维修；同时结束其他账户对该车的绑定（车辆已过户），"
    "并在其账户中通知。核验不符计入失败次数（按账户和按车辆限流）。未开通核验（REGISTRY_DISABLED）或"
    "核验服务不可用（REGISTRY_UNAVAILABLE）时，请上传行驶证照片申请人工审核（POST /api/v1/owner/claims）。",
    responses={
        403: {"model": ErrorBody, "description": "REGISTRY_NO_MATCH"},
        409: {"model": ErrorBody, "description": "REGISTRY_DISABLED / ID_NUMBER_EXISTS"},
        429: {"model": ErrorBody, "description": "AUTH_RATE_LIMITED"},
        503: {"model": ErrorBody, "description": "REGISTRY_UNAVAILABLE"},
    },
)
def verify_vehicle(vin: VinPath, body: VerificationIn, who: OwnerDep, rt: RuntimeDep) -> BindingOut:
    owners.verify_full(  # refuses after its commit: the failure count and the audit record stay
        rt.db,
        rt.registry,
        rt.limiter,
        rt.crypto,
        rt.audit,
        who,
        vin,
        body.plate_no,
        body.owner_name,
        body.id_number,
    )
    with rt.db.transaction() as s:
        return BindingOut(**owners.binding(s, who.id, vin))


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="binding_ended：车辆已过户，本账户对该车的绑定已结束")
    vin: str | None
    text: str
    created_at: datetime
    read: bool


@router.get("/notifications", summary="我的通知", description="如：车辆过户后，原车主对该车的绑定结束。")
def my_notifications(who: OwnerDep, rt: RuntimeDep) -> list[NotificationOut]:
    with rt.db.transaction() as s:
        return [NotificationOut(**n) for n in owners.notifications(s, who.id)]


@router.post("/notifications/read", status_code=204, summary="全部标为已读")
def read_notifications(who: OwnerDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        owners.mark_notifications_read(s, who.id)


@router.get(
    "/vehicles/{vin}/history",
    response_model=schemas.HistoryOut,  # answered by json_body after the commit: the schema is the doc
    summary="车辆维修档案（一车一档）",
    description="完整档案认证后为该车全部有效维修记录；仅以查询码绑定时只含出具查询码的企业的记录"
    "（full_history 为 false）。均为最新版本，已撤销的不显示，按结算日期倒序。每次查询均记入审计日志。",
    responses={403: {"model": ErrorBody, "description": "VEHICLE_NOT_BOUND"}},
)
def history(vin: VinPath, who: OwnerDep, rt: RuntimeDep) -> Response:
    return http.history_response(rt, who, vin)


class ProfileOut(BaseModel):
    owner_id: int
    phone: str
    name: str | None
    id_number: str | None


@router.get("/profile", summary="我的个人信息", description="解密显示本人信息；每次查看均记入审计日志。")
def profile(who: OwnerDep, rt: RuntimeDep) -> ProfileOut:
    with rt.db.transaction() as s:
        return ProfileOut(**ReadService(s, rt.crypto, rt.audit).owner_profile(who))


class GrantIn(BaseModel):
    enterprise_uscc: str = Field(min_length=18, max_length=18, description="被授权维修企业的统一社会信用代码")
    days: int = Field(ge=1, description="授权天数，最长由配置 grant_max_days 决定（默认 30 天）")


class GrantOut(BaseModel):
    grant_id: int
    expires_at: datetime


@router.post(
    "/vehicles/{vin}/grants",
    status_code=201,
    summary="授权维修企业查看车辆档案",
    description="须已完成完整档案认证（FULL_VERIFICATION_REQUIRED）。授权到期、撤销或车辆过户后，"
    "该企业不能再查看；企业看到的档案中不显示其他企业的名称和代码。",
)
def create_grant(vin: VinPath, body: GrantIn, who: OwnerDep, rt: RuntimeDep) -> GrantOut:
    with rt.db.transaction() as s:
        gid, exp = owners.grant(
            s, rt.audit, who, vin, body.enterprise_uscc, body.days, rt.settings.grant_max_days
        )
    return GrantOut(grant_id=gid, expires_at=exp)


@router.delete("/grants/{grant_id}", status_code=204, summary="撤销授权")
def revoke_grant(grant_id: int, who: OwnerDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        owners.revoke_grant(s, rt.audit, who, grant_id)


@router.get("/grants", summary="我的授权", description="全部授权（含已过期、已撤销），active 表示当前有效。")
def list_grants(who: OwnerDep, rt: RuntimeDep) -> list[schemas.OwnerGrantOut]:
    with rt.db.transaction() as s:
        return owners.grants_of_owner(s, who)


@router.get(
    "/vehicles/{vin}/file.pdf",
    summary="下载车辆维修档案（PDF）",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def vehicle_file(vin: VinPath, who: OwnerDep, rt: RuntimeDep) -> Response:
    return http.vehicle_file(vin, who, rt)


class RatingIn(BaseModel):
    attitude: int = Field(ge=1, le=5, description="服务态度 1–5")
    quality: int = Field(ge=1, le=5, description="维修质量 1–5")
    efficiency: int = Field(ge=1, le=5, description="维修效率 1–5")
    transparency: int = Field(ge=1, le=5, description="价格透明度 1–5")
    environment: int = Field(ge=1, le=5, description="店面环境 1–5")
    comment: str | None = Field(default=None, max_length=1000)


@router.post(
    "/records/{record_id}/rating",
    status_code=201,
    summary="评价一次维修",
    description="须已完成该车完整档案认证（FULL_VERIFICATION_REQUIRED：仅凭查询码不能评价，以防维修企业"
    "用自己的查询码给自己刷好评）。每次维修只能评价一次（RATING_EXISTS），须在结算后规定天数内"
    "（RATING_WINDOW_CLOSED）。",
)
def rate_repair(record_id: RecordId, body: RatingIn, who: OwnerDep, rt: RuntimeDep) -> schemas.RatingIdOut:
    scores = ratings.Scores(**body.model_dump(exclude={"comment"}))
    with rt.db.transaction() as s:
        rid = ratings.rate(s, who, record_id, scores, body.comment, rt.settings.rating_window_days)
    return {"rating_id": rid}


class ComplaintIn(BaseModel):
    record_id: int = Field(ge=1, le=2**63 - 1, description="被投诉的维修记录")
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=4000)


@router.post(
    "/complaints",
    status_code=201,
    summary="投诉一次维修",
    description="可投诉本人能查看的维修记录（含以查询码绑定的企业的记录），由维修企业所在地监管部门受理。",
)
def file_complaint(body: ComplaintIn, who: OwnerDep, rt: RuntimeDep) -> schemas.ComplaintIdOut:
    with rt.db.transaction() as s:
        cid = complaints.file(
            s, who, body.record_id, body.title, body.content, rt.settings.complaint_deadline_days
        )
    return {"complaint_id": cid}


@router.get("/complaints", summary="我的投诉及办理状态")
def my_complaints(who: OwnerDep, rt: RuntimeDep) -> list[schemas.ComplaintOut]:
    with rt.db.transaction() as s:
        return complaints.of_owner(s, who)


@router.get("/complaints/{complaint_id}", summary="投诉详情")
def my_complaint(complaint_id: RecordId, who: OwnerDep, rt: RuntimeDep) -> schemas.ComplaintOut:
    with rt.db.transaction() as s:
        return complaints.get(s, who, complaint_id)


@router.post(
    "/claims",
    status_code=201,
    summary="以行驶证照片申请完整档案认证",
    description="车辆登记信息核验未开通、不可用或不符时的人工途径：上传行驶证照片（JPEG/PNG），由车辆号牌"
    "归属地监管部门审核，通过后与核验通过相同（完整档案；其他账户对该车的绑定结束并收到通知）。",
)
def submit_claim(
    who: OwnerDep,
    rt: RuntimeDep,
    vin: Annotated[str, Form(max_length=17)],
    plate_no: Annotated[str, Form(max_length=10)],
    photo: Annotated[UploadFile, File(description="行驶证照片")],
) -> schemas.ClaimIdOut:
    data = photo.file.read(rt.settings.max_attachment_bytes + 1)
    with rt.db.transaction() as s:
        cid = claims.submit(
            s, rt.objects, who, vin, plate_no, data, rt.settings.region_code, rt.settings.max_attachment_bytes
        )
    return {"claim_id": cid}


@router.get("/claims", summary="我的认证申请")
def my_claims(who: OwnerDep, rt: RuntimeDep) -> list[schemas.ClaimOut]:
    with rt.db.transaction() as s:
        return claims.of_owner(s, who)
