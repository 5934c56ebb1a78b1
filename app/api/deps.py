"""FastAPI dependencies: the process runtime, the caller's identity, and the client address."""

from dataclasses import dataclass
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.domain.errors import AppError
from app.runtime import Runtime
from app.security.rbac import Principal, Role
from app.services import enterprises, owners, shops

_bearer = HTTPBearer(auto_error=False, description="由 /token 接口获得的访问令牌")


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(runtime)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def from_trusted_proxy(request: Request) -> bool:
    """Whether the connection comes from a trusted proxy (settings.trusted_proxies: the site's load
    balancers), whose headers about the client (X-Real-IP, X-Client-*) may be believed."""
    try:
        addr = ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    return any(addr in net for net in runtime(request).settings.trusted_proxies)


def client_ip(request: Request) -> str:
    """The caller's address: X-Real-IP only from a trusted proxy, which sets it from the connection;
    anyone else (app-web listens on all addresses) is known by the connection's own address."""
    peer = request.client.host if request.client else "unknown"
    if from_trusted_proxy(request):
        try:
            return str(ip_address(request.headers.get("x-real-ip", "").strip()))
        except ValueError:
            pass
    return peer[:45]


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


def owner_principal(rt: Runtime, token: str, request: Request) -> Principal:
    """An owner by token; checked against the account, so logout, a password change or closing
    the account ends it."""
    claims = rt.tokens.verify(token, "owner")
    with rt.db.transaction() as s:
        owners.check_token(s, claims.subject, claims.generation)
    return Principal(Role.OWNER, claims.subject, request.state.request_id, client_ip(request))


def current_owner(request: Request, rt: RuntimeDep, cred: BearerDep) -> Principal:
    if cred is None:
        raise AppError("AUTH_REQUIRED", 401)
    return owner_principal(rt, cred.credentials, request)


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
    """A shop staff member by token; the account is looked up each time, so disabling it or logging
    out (which raises its token generation) takes effect."""
    claims = rt.tokens.verify(token, "shop")
    with rt.db.transaction() as s:
        user = shops.active_user(s, claims.subject)
        if claims.generation != user.token_generation:
            raise AppError("SESSION_REVOKED", 401)
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
