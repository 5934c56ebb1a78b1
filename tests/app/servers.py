"""An ASGI app served by a real uvicorn on a loopback port, for tests that need real HTTP (a browser,
concurrent callers, an HTTP adapter talking to a stand-in)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.support.ports import free_port


@contextmanager
def serve(app) -> Iterator[str]:
    """Run `app` under uvicorn in a thread of this process (one event loop, as each app-web worker
    has) and yield its base URL; the server is stopped on exit."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not srv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
