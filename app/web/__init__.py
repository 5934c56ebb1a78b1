"""The portal: server-rendered pages (Jinja2, Chinese, no JavaScript) for the public, owners,
regulators and shop staff. Each page calls the same services as the JSON API under /api/v1."""

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from app.web import owner, public, regulator, shop
from app.web.session import LoginRequired
from app.web.templating import render

_TITLES = {
    401: "请先登录",
    403: "无权访问",
    404: "页面不存在",
    409: "操作未完成",
    422: "填写有误",
    429: "请稍后再试",
    503: "服务暂时不可用",
}


def page_error(request: Request, status: int, code: str, message: str) -> Response:
    title = _TITLES.get(status, "服务器内部错误" if status >= 500 else "操作未完成")
    return render(request, "error.html", status=status, title=title, message=message, code=code)


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_first(_: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=303)

    for module in (public, owner, regulator, shop):
        app.include_router(module.router)
