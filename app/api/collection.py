"""Collection API for repair enterprises' software: credentials, tokens, records, attachments."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy.orm import Session

from app.api import schemas
from app.api.deps import EnterpriseCaller, EnterpriseDep, RuntimeDep, client_ip
from app.api.errors import ERROR_RESPONSES, ErrorBody, FieldErrorOut
from app.db.models import RepairRecord
from app.domain.enterprise import EnterpriseIn
from app.domain.errors import AppError, FieldError
from app.domain.record import MAX_BATCH, RecordIn
from app.domain.reference import code_tables
from app.logs import request_id
from app.runtime import Runtime
from app.security.auditlog import Event
from app.security.rbac import Role
from app.services import attachments, enterprises, records, shops
from app.services.collection import Outcome, upload
from app.services.outbox import sink_for

RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

_ENTERPRISE_REFUSED = {
    "model": ErrorBody,
    "description": "企业未获准接入：ENTERPRISE_PENDING / ENTERPRISE_REFUSED / ENTERPRISE_SUSPENDED",
}
router = APIRouter(
    prefix="/api/v1/collection",
    tags=["数据采集（维修企业接口）"],
    responses={**ERROR_RESPONSES, 403: _ENTERPRISE_REFUSED},
)


class RegisteredOut(BaseModel):
    enterprise_id: int = Field(description="企业内部编号")
    key_id: str = Field(description="接入凭证编号（相当于用户名）")
    secret: str = Field(description="接入密钥，仅此一次返回，请妥善保存")


class RegistrationOut(RegisteredOut):
    status: Literal["active", "pending"] = Field(
        description="active 已通过（列入道路运政许可名册）；"
        "pending 待所在地监管部门审核，审核通过前不能获取令牌"
    )
    status_name: str = Field(description="状态中文名称")
    message: str = Field(description="中文说明")


class EnterpriseStatusOut(BaseModel):
    enterprise_id: int
    uscc: str
    name: str
    status: Literal["pending", "active", "refused", "suspended"] = Field(
        description="pending 待审核；active 已通过；refused 未通过（见 status_reason）；suspended 已暂停"
    )
    status_name: str
    status_reason: str | None = Field(description="未通过或暂停的原因")
    status_at: datetime | None = Field(description="状态最近一次变化的时间")


class CredentialIn(BaseModel):
    label: str | None = Field(default=None, max_length=100, description="凭证用途说明，如“前台收银系统”")


class CredentialOut(BaseModel):
    key_id: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class TokenIn(BaseModel):
    key_id: str = Field(min_length=1, max_length=40, description="接入凭证编号")
    secret: str = Field(min_length=1, max_length=200, description="接入密钥")


class TokenOut(BaseModel):
    access_token: str = Field(description="访问令牌，放在 Authorization: Bearer 头中")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_at: int = Field(description="过期时间（Unix 秒）")


class RecordResult(BaseModel):
    index: int = Field(description="该记录在请求中的序号（从 0 开始）")
    status: Literal["accepted", "rejected"] = Field(
        description="accepted 已接收；rejected 被拒绝，未保存任何内容"
    )
    outcome: Literal["created", "updated", "unchanged"] | None = Field(
        default=None,
        description="created 新记录；updated 内容有变化，生成新版本；unchanged 重复提交，未生成新版本",
    )
    record_id: int | None = Field(default=None, description="记录编号")
    version: int | None = Field(default=None, description="当前版本号")
    query_code: str | None = Field(default=None, description="车主查询码，请打印在结算清单上")
    warnings: list[FieldErrorOut] = Field(default_factory=list, description="提示（已接收）")
    errors: list[FieldErrorOut] = Field(default_factory=list, description="逐字段错误（被拒绝时）")


class BatchIn(BaseModel):
    # Records are parsed one by one after the request is accepted, so one bad record is reported on
    # its own instead of failing the whole batch; the schema still shows each record's shape.
    records: list[Annotated[dict[str, Any], WithJsonSchema({"$ref": "#/components/schemas/RecordIn"})]] = (
        Field(
            min_length=1,
            description=f"维修记录，每批最多 {MAX_BATCH} 条",
            json_schema_extra={"maxItems": MAX_BATCH},
        )
    )


class BatchOut(BaseModel):
    accepted: int
    rejected: int
    results: list[RecordResult]


class VersionOut(BaseModel):
    version: int
    kind: Literal["upload", "withdrawal"]
    received_at: datetime
    source: str
    settle_date: date | None
    mileage_km: int | None
    total: Decimal | None
    withdraw_reason: str | None


class RecordOut(BaseModel):
    record_id: int
    settlement_no: str
    vin: str
    status: Literal["active", "withdrawn"]
    current_version: int
    query_code: str
    versions: list[VersionOut]
    latest: dict[str, Any] = Field(description="当前版本内容")


class WithdrawIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="撤销原因")


class AttachmentOut(BaseModel):
    id: int
    sha256: str
    size_bytes: int
    content_type: str


def _result(o: Outcome) -> RecordResult:
    if o.result is None:
        errors = [FieldErrorOut(**e.as_dict()) for e in o.errors]
        return RecordResult(index=o.index, status="rejected", errors=errors)
    r = o.result
    warnings = [FieldErrorOut(**FieldError.of("mileage_km", w).as_dict()) for w in r.warnings]
    return RecordResult(
        index=o.index,
        status="accepted",
        outcome=r.outcome,
        record_id=r.record_id,
        version=r.version,
        query_code=r.query_code,
        warnings=warnings,
    )


PENDING_NOTE = (
    "注册已受理，待所在地监管部门审核；审核通过前获取令牌将返回 ENTERPRISE_PENDING，请妥善保存接入密钥"
)


@router.post(
    "/enterprises",
    status_code=201,
    summary="维修企业注册",
    description="登记企业并发放首个接入凭证（密钥仅此一次返回）。同一统一社会信用代码只能注册一次"
    "（ENTERPRISE_EXISTS）。统一社会信用代码、许可证号和所在地区与道路运政许可名册一致且许可有效的，"
    "注册即通过（status=active）；否则为待审核（status=pending），须经所在地监管部门审核通过后才能获取"
    "令牌、上传记录、出现在企业名录中；审核进度可用 /enterprises/status 查询。",
)
def register_enterprise(body: EnterpriseIn, rt: RuntimeDep, request: Request) -> RegistrationOut:
    with rt.db.transaction() as s:
        reg = enterprises.register(
            s, rt.audit, body, client_ip=client_ip(request), request_id=request_id.get()
        )
    return RegistrationOut(
        enterprise_id=reg.enterprise_id,
        key_id=reg.credential.key_id,
        secret=reg.credential.secret,
        status=reg.status,  # type: ignore[arg-type]
        status_name=enterprises.STATUS_NAMES[reg.status],
        message="注册成功，已通过（列入道路运政许可名册）" if reg.status == "active" else PENDING_NOTE,
    )


@router.post(
    "/enterprises/status",
    summary="查询注册审核状态",
    responses={429: {"model": ErrorBody, "description": "AUTH_RATE_LIMITED"}},
    description="以接入凭证（key_id、secret）查询本企业的审核状态；未通过或暂停时给出原因。"
    "待审核的企业尚不能获取令牌，因此本接口不需要令牌。",
)
def registration_status(body: TokenIn, rt: RuntimeDep, request: Request) -> EnterpriseStatusOut:
    with rt.db.transaction() as s:
        who = enterprises.authenticate(s, rt.limiter, body.key_id, body.secret, client_ip(request))
        status = None if who is None else enterprises.own_status(s, who.enterprise_id)
    if status is None:
        raise AppError("AUTH_INVALID_CREDENTIALS", 401)
    return EnterpriseStatusOut(**status)


@router.post(
    "/token",
    summary="获取访问令牌",
    responses={429: {"model": ErrorBody, "description": "AUTH_RATE_LIMITED"}},
    description="以接入凭证换取有时效的访问令牌。连续认证失败会被限流（AUTH_RATE_LIMITED，HTTP 429）。"
    "企业待审核、未通过或已暂停时返回 403（ENTERPRISE_PENDING / ENTERPRISE_REFUSED / ENTERPRISE_SUSPENDED，"
    "message 中给出原因）。",
)
def token(body: TokenIn, rt: RuntimeDep, request: Request) -> TokenOut:
    return TokenOut(**issue_token(rt, body.key_id, body.secret, client_ip(request)))


def issue_token(rt: Runtime, key_id: str, secret: str, ip: str) -> dict[str, Any]:
    with rt.db.transaction() as s:
        who = enterprises.authenticate(s, rt.limiter, key_id, secret, ip)
        # a right secret of an enterprise not (or no longer) approved gets no token, and says why
        ent = None if who is None else enterprises.enterprise(s, who.enterprise_id)
        refused = None if who is None else enterprises.status_error(ent)
        rt.audit.record(
            s,
            Event(Role.ENTERPRISE_CLIENT.value, key_id[:60], "enterprise.login", f"key:{key_id[:56]}",
                  "success" if who and not refused else "failure",
                  {"refused": refused.code} if refused else {}, request_id.get(), ip),
        )  # fmt: skip
    # the failure was committed above, so the throttle counts it even though we now refuse
    if who is None:
        raise AppError("AUTH_INVALID_CREDENTIALS", 401)
    if refused is not None:
        raise refused
    tok, exp = rt.tokens.issue(
        "enterprise", who.enterprise_id, rt.settings.token_ttl_seconds, who.credential_id
    )
    return {"access_token": tok, "expires_at": exp}


@router.get("/credentials", summary="列出本企业的接入凭证")
def list_credentials(caller: EnterpriseDep, rt: RuntimeDep) -> list[CredentialOut]:
    with rt.db.transaction() as s:
        rows = enterprises.list_credentials(s, caller.enterprise_id)
        return [
            CredentialOut(key_id=c.key_id, label=c.label, created_at=c.created_at, revoked_at=c.revoked_at)
            for c in rows
        ]


@router.post(
    "/credentials",
    status_code=201,
    summary="新增接入凭证",
    description="为另一套门店系统新增凭证；轮换密钥即先新增、切换后再吊销旧凭证。",
)
def add_credential(body: CredentialIn, caller: EnterpriseDep, rt: RuntimeDep) -> RegisteredOut:
    with rt.db.transaction() as s:
        cred = enterprises.issue_credential(s, caller.enterprise_id, body.label)
    return RegisteredOut(enterprise_id=caller.enterprise_id, key_id=cred.key_id, secret=cred.secret)


@router.delete(
    "/credentials/{key_id}",
    status_code=204,
    summary="吊销接入凭证",
    description="吊销后，用该凭证换得的令牌立即失效（CREDENTIAL_REVOKED）。",
)
def revoke_credential(
    key_id: Annotated[str, Path(max_length=40)], caller: EnterpriseDep, rt: RuntimeDep
) -> Response:
    with rt.db.transaction() as s:
        if not enterprises.revoke_credential(s, caller.enterprise_id, key_id):
            raise AppError("NOT_FOUND", 404)
    return Response(status_code=204)


class ShopUserIn(BaseModel):
    username: str = Field(min_length=3, max_length=40, description="登录名：小写字母、数字、._-")
    password: str = Field(min_length=8, max_length=200, description="密码，至少 8 位")
    display_name: str | None = Field(default=None, max_length=50)


@router.post(
    "/users",
    status_code=201,
    summary="为本企业人员开设企业门户账户",
    description="人员以此账户登录企业门户（/shop），查看本企业的上传、评价、投诉和车主授权的档案。",
)
def create_shop_user(body: ShopUserIn, caller: EnterpriseDep, rt: RuntimeDep) -> schemas.UserIdOut:
    with rt.db.transaction() as s:
        uid = shops.create_user(s, caller.enterprise_id, body.username, body.password, body.display_name)
    return {"user_id": uid}


@router.get("/code-tables", summary="代码表", description="上传时使用的全部代码表：代码 → 中文名称。")
def get_code_tables() -> dict[str, dict[str, str]]:
    return code_tables()


@router.post(
    "/records",
    summary="上传一条维修记录",
    description="幂等：同一企业重复提交同一结算清单编号不会产生重复记录；内容有变化则生成新版本。"
    "校验失败返回 422，fields 中逐字段给出错误码，且不保存任何内容。",
)
def upload_record(body: RecordIn, caller: EnterpriseDep, rt: RuntimeDep) -> RecordResult:
    outcome = upload(rt, caller.enterprise_id, [body])[0]
    if not outcome.accepted:
        raise AppError("VALIDATION_FAILED", 422, fields=outcome.errors)
    return _result(outcome)


@router.post(
    "/records/batch",
    summary="批量上传维修记录",
    description=f"每批最多 {MAX_BATCH} 条（BATCH_TOO_LARGE）。每条记录单独给出结果："
    "合格的记录被接收，不合格的记录被拒绝并给出逐字段错误码。",
    responses={413: {"model": ErrorBody, "description": "BATCH_TOO_LARGE / PAYLOAD_TOO_LARGE"}},
)
def upload_batch(body: BatchIn, caller: EnterpriseDep, rt: RuntimeDep) -> BatchOut:
    if len(body.records) > MAX_BATCH:
        raise AppError("BATCH_TOO_LARGE", 413)
    results = [_result(o) for o in upload(rt, caller.enterprise_id, list(body.records))]
    accepted = sum(r.status == "accepted" for r in results)
    return BatchOut(accepted=accepted, rejected=len(results) - accepted, results=results)


def _own_record(s: Session, caller: EnterpriseCaller, record_id: int) -> RepairRecord:
    head = s.get(RepairRecord, record_id)
    if head is None or head.enterprise_id != caller.enterprise_id:
        raise AppError("RECORD_NOT_FOUND", 404)
    return head


@router.get("/records", summary="按结算清单编号查找本企业的记录")
def find_record(
    settlement_no: Annotated[str, Query(min_length=1, max_length=50)], caller: EnterpriseDep, rt: RuntimeDep
) -> RecordOut:
    with rt.db.transaction() as s:
        head = records.find(s, caller.enterprise_id, settlement_no)
        return _record_out(s, rt, head)


@router.get("/records/{record_id}", summary="查看本企业的一条记录及其全部版本")
def get_record(record_id: RecordId, caller: EnterpriseDep, rt: RuntimeDep) -> RecordOut:
    with rt.db.transaction() as s:
        return _record_out(s, rt, _own_record(s, caller, record_id))


def _record_out(s: Session, rt: Runtime, head: RepairRecord) -> RecordOut:
    vs = records.versions(s, head.id)
    latest = next(v for v in vs if v.version == head.current_version)
    content = {
        c: getattr(latest, c)
        for c in (
            "settlement_no",
            "vin",
            "plate_no",
            "plate_colour",
            "repair_date",
            "settle_date",
            "mileage_km",
            "fault_description",
            "repair_type",
            "items",
            "parts",
            "labour_total",
            "parts_total",
            "other_total",
            "total",
            "withdraw_reason",
        )
    }
    return RecordOut(
        record_id=head.id,
        settlement_no=head.settlement_no,
        vin=head.vin,
        status=head.status,  # type: ignore[arg-type]
        current_version=head.current_version,
        query_code=rt.codes.for_record(head.id),
        latest=content,
        versions=[
            VersionOut(
                version=v.version,
                kind=v.kind,
                received_at=v.received_at,  # type: ignore[arg-type]
                source=v.source,
                settle_date=v.settle_date,
                mileage_km=v.mileage_km,
                total=v.total,
                withdraw_reason=v.withdraw_reason,
            )
            for v in vs
        ],
    )


@router.post(
    "/records/{record_id}/withdraw",
    summary="撤销一条记录",
    description="写入一个撤销版本（须注明原因）；历史版本全部保留，车辆档案中不再显示该记录。",
)
def withdraw_record(
    record_id: RecordId, body: WithdrawIn, caller: EnterpriseDep, rt: RuntimeDep
) -> RecordOut:
    with rt.db.transaction() as s:
        head = _own_record(s, caller, record_id)
        sink = sink_for(rt.exchange)
        records.withdraw(s, caller.enterprise_id, head.settlement_no, body.reason, sink)
        return _record_out(s, rt, head)


@router.post(
    "/records/{record_id}/attachments",
    status_code=201,
    summary="上传附件",
    description="结算清单扫描件或维修照片（JPEG、PNG、PDF，单个不超过 10 MB）。"
    "可附 sha256 校验和，不符则拒收（ATTACHMENT_CHECKSUM）。",
    responses={
        413: {"model": ErrorBody, "description": "ATTACHMENT_TOO_LARGE / PAYLOAD_TOO_LARGE"},
        415: {"model": ErrorBody, "description": "ATTACHMENT_TYPE"},
    },
)
def upload_attachment(
    record_id: RecordId,
    caller: EnterpriseDep,
    rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="附件文件")],
    kind: Annotated[
        str, Form(max_length=12, description="附件类型（代码表 attachment_kind）")
    ] = "settlement",
    sha256: Annotated[
        str | None, Form(pattern=r"^[0-9a-fA-F]{64}$", description="文件的 SHA-256（十六进制）")
    ] = None,
) -> AttachmentOut:
    data = file.file.read(rt.settings.max_attachment_bytes + 1)
    with rt.db.transaction() as s:
        head = _own_record(s, caller, record_id)
        stored = attachments.store(
            s,
            rt.objects,
            head.id,
            caller.enterprise_id,
            kind,
            file.filename or "file",
            data,
            sha256,
            rt.settings.max_attachment_bytes,
        )
    return AttachmentOut(
        id=stored.id, sha256=stored.sha256, size_bytes=stored.size_bytes, content_type=stored.content_type
    )


@router.get(
    "/records/{record_id}/attachments/{attachment_id}",
    summary="下载附件",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_attachment(
    record_id: RecordId, attachment_id: RecordId, caller: EnterpriseDep, rt: RuntimeDep
) -> Response:
    with rt.db.transaction() as s:
        head = _own_record(s, caller, record_id)
        att, data = attachments.load(s, rt.objects, head.id, attachment_id)
    return Response(data, media_type=att.content_type, headers={"X-Checksum-SHA256": att.sha256})
