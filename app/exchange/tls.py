"""Which peer is calling: the subject of its verified client certificate.

uvicorn does not pass the TLS peer to the application, so app-web, when it serves TLS itself, uses
this protocol class: it reads the certificate the handshake verified (against the exchange CA) and
puts its subject into the request scope as the ASGI TLS extension's `client_cert_name`. Behind nginx
(`ssl_verify_client optional`), the verified subject comes in the X-Client-Verify / X-Client-S-DN
headers instead, trusted only when the settings say a proxy sets them.
"""

import asyncio
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol


def _subject_dn(cert: dict[str, Any]) -> str:
    parts = [f"{'CN' if k == 'commonName' else k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn]
    return ",".join(parts)


class ClientCertH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        if not cert:
            return
        name, inner = _subject_dn(cert), self.app

        async def with_client_cert(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = {"client_cert_name": name}
            await inner(scope, receive, send)

        self.app = with_client_cert  # type: ignore[assignment]


def common_name(dn: str) -> str | None:
    for part in dn.replace("/", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key.upper() == "CN" and value:
            return value
    return None


def client_cn(request: Request, trust_proxy: bool) -> str | None:
    """The CN of the caller's verified certificate, or None when it showed none."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    if tls.get("client_cert_name"):
        return common_name(tls["client_cert_name"])
    if trust_proxy and request.headers.get("x-client-verify") == "SUCCESS":
        return common_name(request.headers.get("x-client-s-dn", ""))
    return None
