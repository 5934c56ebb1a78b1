"""FastAPI dependencies: the process runtime, the caller's identity, and the client address."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.domain.errors import AppError
from app.runtime import Runtime
from app.security.rbac import Principal, Role
from app.services import enterprises, shops

_bearer = HTTPBearer(auto_error=False, description="由 /token 接口获得的访问令牌")


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(runtime)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_ip(request: Request) -> str:
    # nginx in front sets X-Real-IP; the app listens on loopback only, so the header is trusted
    return request.headers.get("x-real-ip") or (request.client.host if request.client else "unknown")


@dataclass(frozen=True)
class EnterpriseCaller:
    enterprise_id: int
    credential_id: int


def enterprise_from_token(rt: Runtime, token: str) -> EnterpriseCaller:
    claims = rt.tokens.verify(token, "enterprise")
    assert claims.credential is not None
    with rt.db.transaction() as s:
        # revoked credential or enterprise not active (pending, refused, suspended): refused at once
        enterprises.check_credential(s, claims.credential)
    return EnterpriseCaller(claims.subject, claims.credential)


def current_enterprise(rt: RuntimeDep, cred: BearerDep) -> EnterpriseCaller:
    if cred is None:
        raise AppError("AUTH_REQUIRED", 401)
    return enterprise_from_token(rt, cred.credentials)


def current_owner(request: Request, rt: RuntimeDep, cred: BearerDep) -> Principal:
    if cred is None:
        raise AppError("AUTH_REQUIRED", 401)
    claims = rt.tokens.verify(cred.credentials, "owner")
    return Principal(Role.OWNER, claims.subject, request.state.request_id, client_ip(request))


def current_staff(request: Request, rt: RuntimeDep, cred: BearerDep) -> Principal:
    """A regulator or administrator by session token; an expired session is refused, not extended."""
    if cred is None:
        raise AppError("AUTH_REQUIRED", 401)
    with rt.db.transaction() as s:
        return rt.staff_auth.principal(s, cred.credentials, client_ip(request), request.state.request_id)


EnterpriseDep = Annotated[EnterpriseCaller, Depends(current_enterprise)]
OwnerDep = Annotated[Principal, Depends(current_owner)]
StaffDep = Annotated[Principal, Depends(current_staff)]


def shop_principal(rt: Runtime, token: str, request: Request) -> Principal:
    """A shop staff member by token; the account is looked up each time, so disabling it takes effect."""
    claims = rt.tokens.verify(token, "shop")
    with rt.db.transaction() as s:
        user = shops.active_user(s, claims.subject)
        return Principal(
            Role.ENTERPRISE_USER,
            user.id,
            request.state.request_id,
            client_ip(request),
            enterprise_id=user.enterprise_id,
        )


def current_shop_user(request: Request, rt: RuntimeDep, cred: BearerDep) -> Principal:
    if cred is None:
        raise AppError("AUTH_REQUIRED", 401)
    return shop_principal(rt, cred.credentials, request)


ShopDep = Annotated[Principal, Depends(current_shop_user)]
