"""HTTPS to peers: this node's certificate as the client certificate, the exchange CA as trust root,
and every request body a message signed by this node."""

import ssl
import uuid
from typing import Any

import httpx

from app.domain.clock import now
from app.node import ExchangeNode, Peer


def tls_context(node: ExchangeNode) -> ssl.SSLContext:
    cfg = node.config
    ctx = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
    if cfg.tls_cert_file and cfg.tls_key_file:
        ctx.load_cert_chain(str(cfg.tls_cert_file), str(cfg.tls_key_file))
    return ctx


def http_client(node: ExchangeNode) -> httpx.Client:
    return httpx.Client(verify=tls_context(node), timeout=node.config.request_timeout_seconds)


def envelope(
    node: ExchangeNode,
    peer: Peer,
    kind: str,
    body: dict[str, Any],
    message_id: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    return node.signer.sign(
        {
            "id": message_id or str(uuid.uuid4()),
            "kind": kind,
            "from": node.name,
            "to": peer.name,
            "created_at": created_at or now().isoformat(),
            "body": body,
        }
    )


def call(
    client: httpx.Client, node: ExchangeNode, peer: Peer, path: str, kind: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A signed request to one of the peer's exchange endpoints; raises on any failure."""
    r = client.post(f"{peer.url}{path}", json=envelope(node, peer, kind, body))
    r.raise_for_status()
    return r.json()
