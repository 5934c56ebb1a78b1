"""Node-to-node endpoints (mutual TLS + signed messages) and the operators' exchange administration."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from app.api import schemas
from app.api.deps import RuntimeDep, StaffDep, client_ip, from_trusted_proxy
from app.api.errors import ERROR_RESPONSES
from app.domain.errors import AppError
from app.exchange import admin as ops
from app.exchange import reconcile
from app.exchange.client import http_client
from app.exchange.inbox import Rejected, audit_rejection, authenticate, receive
from app.exchange.tls import client_cn
from app.node import ExchangeNode, Peer
from app.runtime import Runtime
from app.security.auditlog import Event
from app.security.rbac import Perm, Principal, require

router = APIRouter(prefix="/api/exchange/v1", tags=["节点间数据交换"])
admin = APIRouter(prefix="/api/v1/admin/exchange", tags=["管理员"], responses=ERROR_RESPONSES)


def _node(rt: Runtime) -> ExchangeNode:
    if rt.exchange is None:
        raise AppError("EXCHANGE_DISABLED", 404)
    return rt.exchange


def _caller(rt: Runtime, request: Request) -> str:
    node = _node(rt)
    # the proxy's certificate headers count only on connections from a trusted proxy
    cn = client_cn(request, node.config.trust_proxy_client_cert and from_trusted_proxy(request))
    if cn is None:
        raise AppError("PEER_CERT_REQUIRED", 401)
    if cn not in node.peers:
        raise AppError("PEER_UNKNOWN", 403)
    return cn


def _signed(rt: Runtime, request: Request, message: dict[str, Any]) -> Peer:
    """A signed request envelope (reconciliation); refused and audited when it does not verify."""
    node, cn = _node(rt), _caller(rt, request)
    try:
        return authenticate(node, cn, message)
    except Rejected as err:
        audit_rejection(rt.db, rt.audit, cn, message, err, client_ip(request))
        raise AppError(err.code, 403) from err


class MessagesIn(BaseModel):
    messages: list[Any] = Field(max_length=500, description="签名报文，见 docs/exchange.md")


@router.post("/messages", response_model_exclude_unset=True, summary="接收对端节点的报文（幂等）")
def messages(body: MessagesIn, rt: RuntimeDep, request: Request) -> schemas.MessageResultsOut:
    cn = _caller(rt, request)
    results = receive(_node(rt), rt.db, rt.audit, cn, body.messages, client_ip(request))
    return {"results": [r.as_dict() for r in results]}


Envelope = Annotated[dict[str, Any], Body(description="签名请求报文")]


def _days(raw: Any) -> list[date]:
    try:
        return [date.fromisoformat(d) for d in raw][:62]
    except (TypeError, ValueError) as exc:
        raise AppError("MESSAGE_MALFORMED", 422) from exc


@router.post("/reconcile/summary", summary="对账：本节点已发给对端的记录，按日、按来源的条数与摘要")
def summary(message: Envelope, rt: RuntimeDep, request: Request) -> schemas.ShippedSummaryOut:
    peer = _signed(rt, request, message)
    days = _days(message["body"].get("days"))
    with rt.db.transaction() as s:
        return {"days": reconcile.shipped_summary(s, peer.name, days)}


@router.post("/reconcile/keys", summary="对账：某日某来源已发记录的键与摘要")
def keys(message: Envelope, rt: RuntimeDep, request: Request) -> schemas.ShippedKeysOut:
    peer = _signed(rt, request, message)
    b = message["body"]
    (day,) = _days([b.get("day")])
    with rt.db.transaction() as s:
        return {"keys": reconcile.shipped_keys(s, peer.name, day, str(b.get("origin_region")))}


@router.post("/reconcile/rerequest", summary="对账：对端缺失的记录重新发送")
def rerequest(message: Envelope, rt: RuntimeDep, request: Request) -> schemas.RerequestOut:
    peer = _signed(rt, request, message)
    wanted = message["body"].get("keys")
    if not isinstance(wanted, list) or len(wanted) > 10000:
        raise AppError("MESSAGE_MALFORMED", 422)
    with rt.db.transaction() as s:
        return reconcile.rerequest(s, peer.name, [str(k) for k in wanted])


# --- administration (system administrator) ---


def _operator(who: Principal) -> None:
    require(who, Perm.EXCHANGE_MANAGE)


PeerFilter = Annotated[str | None, Query(max_length=63)]  # one peer's rows, or all


@admin.get("", response_model_exclude_unset=True, summary="数据交换状态：各对端的游标、积压、死信")
def status(who: StaffDep, rt: RuntimeDep) -> schemas.ExchangeStatusOut:
    _operator(who)
    with rt.db.transaction() as s:
        return {**ops.configured(rt.exchange), "peers_state": ops.peer_status(s)}


@admin.get("/dead-letters", summary="死信列表（对端拒收的报文）")
def dead_letters(who: StaffDep, rt: RuntimeDep, peer: PeerFilter = None) -> list[schemas.DeadLetterOut]:
    _operator(who)
    with rt.db.transaction() as s:
        return ops.dead_letters(s, peer)


@admin.get("/refused", summary="本节点拒收的报文（对端越权：企业或来源不在其辖区、改动本节点上传的记录）")
def refused(who: StaffDep, rt: RuntimeDep, peer: PeerFilter = None) -> list[schemas.RefusalOut]:
    _operator(who)
    with rt.db.transaction() as s:
        return ops.refusals(s, peer)


class ReplayIn(BaseModel):
    peer: str | None = Field(default=None, max_length=63, description="只重发发往该对端的死信")
    message_ids: list[str] | None = Field(
        default=None, max_length=10000, description="只重发这些报文；缺省为全部"
    )


@admin.post("/dead-letters/replay", summary="重发死信（以新报文编号重新排队）")
def replay(body: ReplayIn, who: StaffDep, rt: RuntimeDep) -> schemas.ReplayOut:
    _operator(who)
    with rt.db.transaction() as s:
        made = ops.replay(s, body.peer, body.message_ids)
        rt.audit.record(
            s,
            Event(
                who.actor_kind,
                str(who.id),
                "exchange.replay",
                f"peer:{body.peer or '*'}"[:60],
                "success",
                {"replayed": len(made)},
                who.request_id,
                who.client_ip,
            ),
        )
    return {"replayed": len(made), "message_ids": made}


@admin.get("/reconcile", summary="对账状态：各对端按日、按来源的条数与摘要比较")
def reconcile_state(who: StaffDep, rt: RuntimeDep) -> schemas.ReconcileStateOut:
    _operator(who)
    with rt.db.transaction() as s:
        rows = reconcile.state(s)
    return {"node": _node(rt).name, "days": rows}


@admin.post(
    "/reconcile/run", summary="立即对账一次（缺失的记录向对端重新索取）", response_model_exclude_unset=True
)
def reconcile_run(who: StaffDep, rt: RuntimeDep) -> dict[str, schemas.PeerReconcileOut]:
    _operator(who)
    node = _node(rt)
    with http_client(node) as client:
        result = reconcile.reconcile_all(node, rt.db, client)
    with rt.db.transaction() as s:
        rt.audit.record(
            s,
            Event(
                who.actor_kind,
                str(who.id),
                "exchange.reconcile",
                f"node:{node.name}"[:60],
                "success",
                {},
                who.request_id,
                who.client_ip,
            ),
        )
    return result
