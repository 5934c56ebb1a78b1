"""`app-web`: the API on uvicorn, behind nginx."""

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from app import logs
from app.settings import get_settings


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
    )
    sock = config.bind_socket()
    # Accepted connections inherit this; without it uvicorn's worker processes answer small requests
    # ~40 ms late (Nagle against delayed ACKs), which caps a keep-alive client at ~25 requests/s.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if settings.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
