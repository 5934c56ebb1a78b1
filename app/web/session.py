"""Who is signed in to the portal: the same tokens as the API, kept in cookies.

Cookies are HttpOnly and SameSite=Strict, and a form post whose Origin names another site is
refused, so another site cannot make a signed-in browser act (no JavaScript reads the cookies).
"""

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from app.api.deps import RuntimeDep, client_ip, owner_principal, shop_principal
from app.domain.errors import AppError
from app.security.rbac import Principal
from app.services import owners, shops

COOKIES = {"owner": "pbox_owner", "staff": "pbox_staff", "shop": "pbox_shop"}
LOGIN_PAGES = {"owner": "/owner/login", "staff": "/staff/login", "shop": "/shop/login"}


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in user; answered with a redirect to the login page."""

    def __init__(self, kind: str, next_path: str) -> None:
        super().__init__(kind)
        self.location = f"{LOGIN_PAGES[kind]}?next={quote(next_path)}"


def same_origin(request: Request) -> None:
    if request.method == "POST":
        origin = request.headers.get("origin")
        # hostnames only: nginx passes $host, which carries no port
        host = urlsplit("//" + request.headers.get("host", "")).hostname
        if origin and origin != "null" and urlsplit(origin).hostname != host:
            raise AppError("FORBIDDEN", 403, "跨站提交被拒绝")


def set_cookie(request: Request, response: Response, kind: str, token: str, max_age: int) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        COOKIES[kind], token, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )


def signed_in(
    request: Request, rt: RuntimeDep, kind: str, subject: int, generation: int, to: str
) -> RedirectResponse:
    """A new token of the owner or shop portal (of the account's current generation) in its cookie,
    and on to `to`; shop sessions last as long as owners'."""
    ttl = rt.settings.owner_token_ttl_seconds
    token, _ = rt.tokens.issue(kind, subject, ttl, generation=generation)
    response = RedirectResponse(to, status_code=303)
    set_cookie(request, response, kind, token, ttl)
    return response


def signed_out(kind: str, to: str = "/") -> RedirectResponse:
    r = RedirectResponse(to, status_code=303)
    r.delete_cookie(COOKIES[kind], path="/")
    return r


def end_session(request: Request, rt: RuntimeDep, kind: str) -> None:
    """Logout ends the token itself, not only the browser's copy of it (owner and shop portals)."""
    token = request.cookies.get(COOKIES[kind])
    if not token:
        return
    try:
        who = owner_principal(rt, token, request) if kind == "owner" else shop_principal(rt, token, request)
    except AppError:
        return  # already ended
    with rt.db.transaction() as s:
        (owners.logout if kind == "owner" else shops.logout)(s, rt.audit, who)


def _token(request: Request, kind: str) -> str:
    token = request.cookies.get(COOKIES[kind])
    if not token:
        raise LoginRequired(kind, request.url.path)
    return token


def web_owner(request: Request, rt: RuntimeDep) -> Principal:
    token = _token(request, "owner")
    try:
        return owner_principal(rt, token, request)
    except AppError as exc:
        raise LoginRequired("owner", request.url.path) from exc


def web_staff(request: Request, rt: RuntimeDep) -> Principal:
    token = _token(request, "staff")
    try:
        with rt.db.transaction() as s:
            who = rt.staff_auth.principal(s, token, client_ip(request), request.state.request_id)
    except AppError as exc:
        raise LoginRequired("staff", request.url.path) from exc
    return who


def web_shop(request: Request, rt: RuntimeDep) -> Principal:
    token = _token(request, "shop")
    try:
        return shop_principal(rt, token, request)
    except AppError as exc:
        raise LoginRequired("shop", request.url.path) from exc


WebOwner = Annotated[Principal, Depends(web_owner)]
WebStaff = Annotated[Principal, Depends(web_staff)]
WebShop = Annotated[Principal, Depends(web_shop)]


def safe_next(target: str | None, default: str) -> str:
    """Only a local path: a login link must not send people on to another site."""
    # browsers read "/\\host" like "//host" (another site): no backslash, and nothing but a path
    local = target and target.startswith("/") and not target.startswith("//")
    if local and "\\" not in target and not urlsplit(target).netloc:
        return target
    return default
