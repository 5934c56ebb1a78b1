"""Staff API: first login (own password, own TOTP), login with password + TOTP, logout, password change;
administration under separated duties."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api import schemas
from app.api.deps import BearerDep, RuntimeDep, StaffDep, client_ip
from app.api.errors import ERROR_RESPONSES
from app.db.models import AuditEvent
from app.domain.errors import AppError
from app.runtime import Runtime
from app.security import auditlog
from app.security.auditlog import Event
from app.security.rbac import Perm, Role, require
from app.security.staffauth import LoginResult
from app.services import staff

router = APIRouter(prefix="/api/v1/staff", tags=["工作人员"], responses=ERROR_RESPONSES)
admin = APIRouter(prefix="/api/v1/admin", tags=["管理员"], responses=ERROR_RESPONSES)


class LoginIn(BaseModel):
    username: str = Field(max_length=40)
    password: str = Field(max_length=200)
    totp_code: str = Field(max_length=10, description="动态口令（TOTP，6 位）")


class SessionOut(BaseModel):
    access_token: str
    idle_timeout_seconds: int


class PasswordIn(LoginIn):
    new_password: str = Field(max_length=200)


@router.post("/token", summary="工作人员登录（密码 + 动态口令）")
def login(body: LoginIn, rt: RuntimeDep, request: Request) -> SessionOut:
    with rt.db.transaction() as s:
        result = rt.staff_auth.login(
            s, body.username, body.password, body.totp_code, client_ip(request), request.state.request_id
        )
    return _session(rt, result)


def _session(rt: Runtime, result: LoginResult) -> SessionOut:
    """The new session, or the refusal: raised after the commit, so the failure counter and the
    audit record outlive it."""
    if result.error is not None:
        raise result.error
    assert result.token is not None
    return SessionOut(access_token=result.token, idle_timeout_seconds=rt.settings.staff_idle_timeout_seconds)


class FirstLoginIn(BaseModel):
    username: str = Field(max_length=40)
    activation_code: str = Field(max_length=100, description="系统管理员创建或重置账户时给出的一次性激活码")
    new_password: str = Field(max_length=200, description="本人设置的密码，须符合密码策略")


class FirstLoginOut(BaseModel):
    totp_secret: str = Field(description="动态口令密钥，仅此一次显示，请添加到手机的身份验证器应用")
    totp_uri: str
    enrolment_token: str = Field(description="第二步所用的一次性令牌")
    expires_at: datetime


class FirstLoginConfirmIn(BaseModel):
    enrolment_token: str = Field(max_length=100)
    totp_code: str = Field(max_length=10, description="身份验证器显示的 6 位动态口令")


@router.post(
    "/first-login",
    summary="首次登录第一步：以激活码设置本人密码，取得动态口令密钥",
    description=(
        "新建或被重置的账户只能用激活码做此一步：设置本人密码后，应答给出新的动态口令密钥"
        "（仅本人可见，管理员看不到）。激活码随即作废，由应答中的 enrolment_token 完成第二步。"
    ),
)
def first_login(body: FirstLoginIn, rt: RuntimeDep, request: Request) -> FirstLoginOut:
    with rt.db.transaction() as s:
        made, error = rt.staff_auth.begin_enrolment(
            s,
            body.username,
            body.activation_code,
            body.new_password,
            client_ip(request),
            request.state.request_id,
        )
    if error is not None:
        raise error
    assert made is not None
    return FirstLoginOut(
        totp_secret=made.totp_secret,
        totp_uri=made.totp_uri,
        enrolment_token=made.enrolment_token,
        expires_at=made.expires_at,
    )


@router.post(
    "/first-login/confirm",
    summary="首次登录第二步：以动态口令确认，完成后即登录",
    description="确认前账户不能登录（ENROLMENT_REQUIRED）。",
)
def first_login_confirm(body: FirstLoginConfirmIn, rt: RuntimeDep, request: Request) -> SessionOut:
    with rt.db.transaction() as s:
        result = rt.staff_auth.finish_enrolment(
            s, body.enrolment_token, body.totp_code, client_ip(request), request.state.request_id
        )
    return _session(rt, result)


@router.post(
    "/password", status_code=204, summary="修改密码", description="密码过期后也以此修改；修改后全部会话失效。"
)
def change_password(body: PasswordIn, rt: RuntimeDep, request: Request) -> None:
    with rt.db.transaction() as s:
        error = rt.staff_auth.change_password(
            s,
            body.username,
            body.password,
            body.totp_code,
            body.new_password,
            client_ip(request),
            request.state.request_id,
        )
    if error is not None:
        raise error


@router.post("/logout", status_code=204, summary="退出登录（注销本会话）")
def logout(who: StaffDep, cred: BearerDep, rt: RuntimeDep) -> None:
    assert isinstance(cred, HTTPAuthorizationCredentials)  # StaffDep has already refused a missing one
    with rt.db.transaction() as s:
        rt.staff_auth.logout(s, cred.credentials, who)


class StaffIn(BaseModel):
    username: str = Field(max_length=40)
    display_name: str | None = Field(default=None, max_length=50)


class StaffOut(BaseModel):
    staff_id: int
    activation_code: str = Field(
        description="一次性激活码，仅此一次显示：交给账户本人，用于首次登录（设置本人密码、绑定动态口令），不能用于登录"
    )
    expires_at: datetime


class RoleIn(BaseModel):
    role: Role
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$", description="监管人员的管辖区域")


@admin.post(
    "/staff",
    status_code=201,
    summary="创建工作人员账户（系统管理员）",
    description="只得到一次性激活码，不设密码、看不到动态口令密钥；本人首次登录后，由安全管理员分配角色。",
)
def create_staff(body: StaffIn, who: StaffDep, rt: RuntimeDep) -> StaffOut:
    with rt.db.transaction() as s:
        made = staff.create(
            s, rt.audit, who, body.username, body.display_name, rt.settings.staff_enrolment_code_seconds
        )
    return StaffOut.model_validate(made, from_attributes=True)


@admin.post(
    "/staff/{staff_id}/reset",
    summary="重置账户（系统管理员）",
    description="忘记密码或丢失动态口令时：原密码、动态口令、全部会话和角色作废，得到新的一次性激活码，"
    "由本人重新完成首次登录，再由安全管理员重新分配角色。",
)
def reset_staff(staff_id: int, who: StaffDep, rt: RuntimeDep) -> StaffOut:
    with rt.db.transaction() as s:
        made = staff.reset(s, rt.audit, who, staff_id, rt.settings.staff_enrolment_code_seconds)
    return StaffOut.model_validate(made, from_attributes=True)


@admin.post("/staff/{staff_id}/disable", status_code=204, summary="停用账户（系统管理员）")
def disable_staff(staff_id: int, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        staff.disable(s, rt.audit, who, staff_id)


@admin.put("/staff/{staff_id}/role", status_code=204, summary="分配角色（安全管理员，不能给自己）")
def assign_role(staff_id: int, body: RoleIn, who: StaffDep, rt: RuntimeDep) -> None:
    with rt.db.transaction() as s:
        staff.assign_role(s, rt.audit, who, staff_id, body.role, body.region_code)


@admin.post("/staff/{staff_id}/sessions/revoke", summary="注销该账户全部会话（安全管理员）")
def revoke_sessions(staff_id: int, who: StaffDep, rt: RuntimeDep) -> schemas.RevokedOut:
    with rt.db.transaction() as s:
        return {"revoked": staff.revoke_sessions(s, rt.audit, who, staff_id)}


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    subject: str
    outcome: str
    detail: dict[str, Any]
    request_id: str | None
    client_ip: str | None
    hash: str


@admin.get("/audit/events", summary="查阅审计日志（审计管理员）")
def audit_events(
    who: StaffDep,
    rt: RuntimeDep,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EventOut]:
    with rt.db.transaction() as s:
        require(who, Perm.AUDIT_READ)
        rt.audit.record(
            s,
            Event(
                who.actor_kind,
                str(who.id),
                "audit.read",
                f"after:{after_seq}",
                request_id=who.request_id,
                client_ip=who.client_ip,
            ),
        )
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq).limit(limit)
        )
        return [EventOut.model_validate(r, from_attributes=True) for r in rows]


@admin.get("/audit/verify", summary="校验审计日志哈希链（审计管理员）")
def audit_verify(who: StaffDep, rt: RuntimeDep) -> schemas.AuditVerifyOut:
    with rt.db.transaction() as s:
        require(who, Perm.AUDIT_READ)
        try:
            report = rt.audit.verify(s)
        except auditlog.MissingAuditKey:
            raise AppError("AUDIT_KEY_MISSING", 409) from None
    if not report.ok:
        raise AppError("AUDIT_CHAIN_BROKEN", 409, f"审计日志第 {report.broken_seq} 条：{report.reason}")
    return {"ok": True, "checked": report.checked, "head": report.head}
