"""A playground server on a free loopback port, and a WebSocket client for it, for the tests."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

from websockets.sync.client import ClientConnection, connect

from matrixprop.playground.server import bind, make_server, url_of

TIMEOUT = 10.0  # seconds to wait for any one message or for the server to start


@contextlib.contextmanager
def running_server() -> Iterator[str]:
    """Serve the playground in a thread; yield its URL (``http://127.0.0.1:PORT/``)."""
    sock = bind("127.0.0.1", 0)
    server = make_server()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)


class Page:
    """What the page does on the socket: send messages, read the replies by type."""

    def __init__(self, url: str, **kwargs):
        self._stack = contextlib.ExitStack()
        self.socket: ClientConnection = self._stack.enter_context(
            connect(url.replace("http", "ws", 1) + "ws", **kwargs))
        self.hello = self.expect("hello")
        self.reset = self.expect("reset")
        self.frame = self.expect("frame")

    def send(self, message) -> None:
        self.socket.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def receive(self) -> dict:
        return json.loads(self.socket.recv(timeout=TIMEOUT))

    def expect(self, kind: str) -> dict:
        """The next message of type ``kind`` (frames and states in between are skipped; an
        unexpected error fails the test)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = self.receive()
            if message["type"] == kind:
                return message
            assert message["type"] != "error", message
        raise AssertionError(f"no {kind!r} message within {TIMEOUT} s")

    def drain(self, quiet: float = 0.3) -> None:
        """Read and drop messages until none comes for ``quiet`` seconds."""
        while True:
            try:
                self.socket.recv(timeout=quiet)
            except TimeoutError:
                return

    def close(self) -> None:
        self._stack.close()
