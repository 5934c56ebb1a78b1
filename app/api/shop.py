"""Shop portal API for people at a repair enterprise: their uploads and what was refused, ratings and
complaints with the chance to answer, and the car histories owners have shared with them."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api import http, schemas
from app.api.deps import RuntimeDep, ShopDep, client_ip
from app.api.errors import ERROR_RESPONSES
from app.domain.errors import AppError
from app.services import complaints, corrections, ratings, shops

router = APIRouter(prefix="/api/v1/shop", tags=["维修企业门户"], responses=ERROR_RESPONSES)

ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]
VinPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPR-Z]{17}$", description="车辆识别代号")]


class LoginIn(BaseModel):
    username: str = Field(max_length=40)
    password: str = Field(max_length=200)


class ShopTokenOut(BaseModel):
    access_token: str
    expires_at: int


@router.post(
    "/token",
    summary="企业人员登录",
    description="账户由本企业的接入凭证通过 POST /api/v1/collection/users 创建。",
)
def login(body: LoginIn, rt: RuntimeDep, request: Request) -> ShopTokenOut:
    with rt.db.transaction() as s:
        user = shops.authenticate(s, rt.limiter, body.username, body.password, client_ip(request))
        user_id, gen = (user.id, user.token_generation) if user else (None, 0)
    if user_id is None:
        raise AppError("SHOP_INVALID_CREDENTIALS", 401)
    tok, exp = rt.tokens.issue("shop", user_id, rt.settings.owner_token_ttl_seconds, generation=gen)
    return ShopTokenOut(access_token=tok, expires_at=exp)


@router.post("/logout", status_code=204, summary="退出登录", description="本账户已签发的全部令牌随即失效。")
def logout(who: ShopDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        shops.logout(s, rt.audit, who)


@router.get("/uploads", summary="本企业上传的记录（最新在前，含版本数即更正次数）")
def uploads(who: ShopDep, rt: RuntimeDep) -> list[schemas.ShopUploadOut]:
    with rt.db.transaction() as s:
        return shops.uploads(s, who)


@router.get("/rejections", summary="被拒收的上传及其错误")
def rejections(who: ShopDep, rt: RuntimeDep) -> list[schemas.ShopRejectionOut]:
    with rt.db.transaction() as s:
        return shops.rejections(s, who)


@router.get("/records/{record_id}", summary="一条记录的全部版本（上传、更正、撤销）")
def record(record_id: ItemId, who: ShopDep, rt: RuntimeDep) -> schemas.ShopRecordOut:
    with rt.db.transaction() as s:
        return shops.record_versions(s, who, record_id)


@router.get(
    "/records/{record_id}/correction",
    summary="更正用的记录内容",
    description="该记录最近一次上传的内容，格式即上传请求体，修改后提交到 POST /api/v1/shop/corrections。",
)
def correction_body(record_id: ItemId, who: ShopDep, rt: RuntimeDep) -> schemas.CorrectionBodyOut:
    with rt.db.transaction() as s:
        return corrections.latest_body(s, who, record_id)


class CorrectedOut(BaseModel):
    record_id: int
    outcome: str = Field(description="created 新记录；updated 生成新版本；unchanged 内容相同，未生成新版本")
    version: int


@router.post(
    "/corrections",
    summary="提交更正",
    description="请求体同 POST /api/v1/collection/records：以相同结算清单号重新上传，校验规则相同，"
    "不合格时返回 422 VALIDATION_FAILED 及逐字段错误。每次提交记入审计日志（record.correct）。",
)
def submit_correction(body: dict[str, Any], who: ShopDep, rt: RuntimeDep) -> CorrectedOut:
    done = corrections.submit(rt, who, body)
    if done.record_id is None or done.outcome is None or done.version is None:
        raise AppError("VALIDATION_FAILED", 422, fields=done.errors)
    return CorrectedOut(record_id=done.record_id, outcome=done.outcome, version=done.version)


@router.get("/ratings", summary="本企业收到的评价")
def my_ratings(who: ShopDep, rt: RuntimeDep) -> list[schemas.ShopRatingOut]:
    assert who.enterprise_id is not None
    with rt.db.transaction() as s:
        return [
            {
                "rating_id": r.id,
                "record_id": r.record_id,
                "created_at": r.created_at,
                "scores": {d: getattr(r, d) for d in ratings.DIMENSIONS},
                "comment": r.comment,
                "reply": r.reply,
            }
            for r in ratings.of_enterprise(s, who.enterprise_id, limit=200)
        ]


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


@router.post("/ratings/{rating_id}/reply", status_code=204, summary="答复评价（一次）")
def reply_rating(rating_id: ItemId, body: ReplyIn, who: ShopDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        ratings.reply(s, who, rating_id, body.text)


@router.get("/complaints", summary="针对本企业的投诉")
def my_complaints(who: ShopDep, rt: RuntimeDep) -> list[schemas.ComplaintOut]:
    with rt.db.transaction() as s:
        return complaints.of_enterprise(s, who)


@router.post("/complaints/{complaint_id}/reply", status_code=204, summary="企业说明（一次）")
def reply_complaint(complaint_id: ItemId, body: ReplyIn, who: ShopDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        complaints.enterprise_reply(s, who, complaint_id, body.text)


@router.get("/shared", summary="车主授权本企业查看的车辆")
def shared(who: ShopDep, rt: RuntimeDep) -> list[schemas.SharedVehicleOut]:
    with rt.db.transaction() as s:
        return shops.shared_with(s, who)


@router.get(
    "/shared/{vin}/history",
    response_model=schemas.HistoryOut,  # answered by json_body after the commit: the schema is the doc
    summary="已授权车辆的维修档案",
    description="其他企业的名称和代码不显示；每次查看均记入审计日志。",
)
def shared_history(vin: VinPath, who: ShopDep, rt: RuntimeDep) -> Response:
    return http.history_response(rt, who, vin)
