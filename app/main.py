"""The FastAPI application: routers, error handling, middleware, and the runtime it serves from."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import logs, web
from app.api import collection, exchange, national, owner, public, regulator, shop, staff
from app.api.errors import install as install_error_handlers
from app.api.middleware import RequestMiddleware
from app.api.ops import router as ops_router
from app.exchange.relay import ensure_cursors
from app.runtime import Runtime
from app.settings import Settings, get_settings

DESCRIPTION = """\
省级汽车维修电子健康档案系统（一车一档）的应用接口。

* **数据采集**（`/api/v1/collection`）：维修企业管理软件上传维修记录、附件。
* **兼容接口**（`/api/national/`）：现有门店软件使用的 transaction/reqInfo 报文，仅需修改基础地址。
* **车主**（`/api/v1/owner`）：注册、以查询码认证车辆、查看车辆维修档案、授权维修企业查看。
* **工作人员**（`/api/v1/staff`、`/api/v1/admin`）：密码 + 动态口令登录；系统、安全、审计三员分立。
* **监管**（`/api/v1/regulator`）：仅本辖区数据：投诉处理、统计与导出、发布信息、行驶证认证审核。
* **公众**（`/api/v1/public`）：查找维修企业、企业评价与排名、通知公告与标准。
* **维修企业人员**（`/api/v1/shop`）：本企业上传情况、评价与投诉答复、车主授权查看的档案。

同样的功能也以网页提供（`/`、`/owner`、`/regulator`、`/shop`），网页与接口调用同一套业务规则。

所有错误响应形如 `{"error": {"code": "机器可读错误码", "message": "中文说明", "fields": [...]}}`。
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # here rather than in app-web's main: uvicorn's worker processes start fresh interpreters
        logs.configure(settings.log_level)
        rt = Runtime.from_settings(settings)
        app.state.runtime, app.state.db, app.state.objects = rt, rt.db, rt.objects
        rt.objects.ensure_bucket()
        if rt.exchange is not None:  # every configured peer has a cursor (and a status) from the start
            with rt.db.transaction() as s:
                ensure_cursors(s, list(rt.exchange.peers))
        yield
        rt.close()

    app = FastAPI(
        title="汽车维修电子健康档案系统 API", version="1.0", description=DESCRIPTION, lifespan=lifespan
    )
    install_error_handlers(app, web.page_error, {national.router.prefix + "/": national.unavailable})
    web.install(app)
    for router in (
        collection.router,
        national.router,
        owner.router,
        staff.router,
        staff.admin,
        regulator.router,
        public.router,
        shop.router,
        exchange.router,
        exchange.admin,
        ops_router,
    ):
        app.include_router(router)

    attachment_limit = settings.max_attachment_bytes + 64 * 1024  # multipart framing on top of the file

    def body_limit(path: str) -> int:
        return attachment_limit if path.endswith("/attachments") else settings.max_body_bytes

    app.add_middleware(RequestMiddleware, body_limit=body_limit)
    return app
