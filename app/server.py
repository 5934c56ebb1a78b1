"""`app-web`: the API on uvicorn, behind nginx."""

import socket
import ssl
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from app import logs
from app.exchange.tls import ClientCertH11Protocol
from app.settings import Settings, get_settings

# TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are always on).
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def tls_context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context (certificate, key, ciphers, client CA) with TLS 1.2 as the oldest protocol."""
    ctx = default()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_options(settings: Settings) -> dict[str, Any]:
    """HTTPS, when configured, for the load balancer and peer nodes: client certificates optional,
    verified against the CA when shown; the exchange endpoints refuse callers without one
    (app.exchange.tls)."""
    if settings.tls_cert_file is None:
        return {}
    return {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_ciphers": TLS_CIPHERS,
        "ssl_context_factory": tls_context,
        "ssl_ca_certs": str(settings.tls_client_ca_file) if settings.tls_client_ca_file else None,
        "ssl_cert_reqs": ssl.CERT_OPTIONAL if settings.tls_client_ca_file else ssl.CERT_NONE,
        "http": ClientCertH11Protocol,
    }


def bind(config: uvicorn.Config) -> socket.socket:
    sock = config.bind_socket()
    # Accepted connections inherit this; without it uvicorn's worker processes answer small requests
    # ~40 ms late (Nagle against delayed ACKs), which caps a keep-alive client at ~25 requests/s.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level)
    config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        # X-Forwarded-For / -Proto only from the load balancers (the app's client_ip does the same)
        forwarded_allow_ips=[str(net) for net in settings.trusted_proxies],
        **tls_options(settings),
    )
    sock = bind(config)
    if settings.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
