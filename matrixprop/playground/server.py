"""Running the playground: a uvicorn server, on the loopback address unless told otherwise."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from .app import create_app
from .stream import MAX_MESSAGE

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "bind", "make_server", "serve", "url_of"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_WS_MAX_BYTES = 4 * MAX_MESSAGE  # larger frames close the connection at the protocol level


def make_server() -> uvicorn.Server:
    """A uvicorn server for a new playground app.

    Serve with ``server.run(sockets=[bind(host, port)])`` (it blocks; set
    ``server.should_exit`` to stop it).
    """
    config = uvicorn.Config(create_app(), log_level="warning", ws="auto",
                            ws_max_size=_WS_MAX_BYTES, lifespan="off")
    return uvicorn.Server(config)


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A TCP socket bound to ``(host, port)``; ``port=0`` takes a free port.

    Raises OSError (address in use, unknown host) before anything is served.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """The page's address on a bound socket (the port it really got)."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the playground until interrupted; call ``on_ready(url)`` once it listens."""
    sock = bind(host, port)
    server = make_server()
    if on_ready is not None:
        def wait_then_call() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                on_ready(url_of(sock))

        threading.Thread(target=wait_then_call, daemon=True).start()
    server.run(sockets=[sock])
