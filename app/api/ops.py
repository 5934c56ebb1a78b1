"""Prometheus metrics and the health endpoints the load balancer and monitoring probe.

app-web runs several uvicorn worker processes and a scrape reaches only one of them: with
PROMETHEUS_MULTIPROC_DIR set (the app-web unit sets it), every process writes its samples there and
/metrics answers with all of them merged, so counters never jump between processes.

Each metric is defined by the module that counts it: uploads in app.services.collection, staff login
failures in app.security.staffauth, request latency in app.api.middleware, the exchange's gauges in
app.exchange.metrics; this module only adds the database pool's and answers the scrape.
"""

import logging
import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from app.api import schemas
from app.api.errors import RETRY_AFTER_SECONDS
from app.exchange.metrics import refresh as refresh_exchange

log = logging.getLogger("app.metrics")

# Each process's own pool, as that process last saw it (labelled pid when merged).
DB_POOL = Gauge(
    "pbox_db_pool_connections", "Database pool connections by state", ["state"], multiprocess_mode="liveall"
)

router = APIRouter(tags=["运维"])


def exposition() -> bytes:
    """This process's metrics, or every app-web process's when they share a multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


@router.get("/healthz", summary="存活探针：进程在运行")
def healthz() -> schemas.HealthOut:
    return {"status": "ok"}


@router.get("/readyz", summary="就绪探针：数据库与对象存储均可达", response_model=schemas.ReadyOut)
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, bool] = {}
    try:
        checks["database"] = request.app.state.db.ping()
    except Exception:  # any failure means not ready, whatever its kind
        checks["database"] = False
    checks["object_store"] = request.app.state.objects.ping()
    ok = all(checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    retry = {} if ok else {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse(body, status_code=200 if ok else 503, headers=retry)


@router.get("/metrics", summary="Prometheus 指标", response_class=Response)
def metrics(request: Request) -> Response:
    pool = request.app.state.db.engine.pool
    DB_POOL.labels("checked_out").set(pool.checkedout())
    DB_POOL.labels("idle").set(pool.checkedin())
    DB_POOL.labels("size").set(pool.size())
    if request.app.state.runtime.exchange is not None:
        try:
            with request.app.state.db.transaction() as s:
                refresh_exchange(s)
        except (OperationalError, SATimeoutError):  # the database is down: the process metrics still count
            log.warning("exchange metrics not refreshed: database unavailable")
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
