"""The WebSocket protocol: one :class:`Session` per connection, frames at a steady rate.

Messages are JSON objects with a ``type``. From the page:

- ``{"type": "configure", "config": {...}}``: check the settings (see :class:`Config`) and start
  a new run with them;
- ``{"type": "play"}``, ``{"type": "pause"}``, ``{"type": "step"}`` (one epoch),
  ``{"type": "reset"}`` (start the same run over);
- ``{"type": "speed", "epochs_per_frame": n}``: train at most ``n`` epochs per frame while
  playing (``null``: as many as fit in the frame's time);
- ``{"type": "inspect", "target": {"layer": k, "neuron": j, "weight": i, "sample": s}}``: show
  neuron ``j`` of layer ``k`` (and its incoming weight ``i``; all from 1) for training sample
  ``s`` (from 0) in the panel, live; ``"target": null`` closes the panel.

To the page: ``hello`` (the session id, for the export URLs), ``reset`` (settings, layer sizes
and data), ``frame`` (losses, maps, weights, the panel's numbers; at most ``FRAMES_PER_SECOND``
a second while playing), ``state`` (playing or not, and the speed), ``error`` (a message for the
page to show; the connection stays open).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import MutableMapping
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..io import to_json
from .config import Config
from .session import Session

__all__ = ["FRAMES_PER_SECOND", "MAX_MESSAGE", "MAX_SESSIONS", "Connection"]

FRAMES_PER_SECOND = 15
TRAIN_SHARE = 0.6  # of each frame's time spent training; the rest draws and sends
MAX_MESSAGE = 64 * 1024  # characters
MAX_SESSIONS = 32
DEFAULT_EPOCHS_PER_FRAME = 2
MAX_EPOCHS_PER_FRAME = 1000
POLICY_VIOLATION = 1008  # WebSocket close code

log = logging.getLogger(__name__)


class Connection:
    """One page's connection: reads its messages and streams its run.

    Parameters
    ----------
    websocket : starlette.websockets.WebSocket
        The connection, not yet accepted.
    sessions : mutable mapping
        Session id -> Session of every open connection (the export routes read it).
    """

    def __init__(self, websocket: WebSocket, sessions: MutableMapping[str, Session]):
        self.websocket = websocket
        self.sessions = sessions
        self.playing = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.session: Session | None = None
        self.epochs_per_frame: int | None = DEFAULT_EPOCHS_PER_FRAME
        self.handlers = {"configure": self._configure, "play": self._play, "pause": self._pause,
                         "step": self._step, "reset": self._reset, "inspect": self._inspect,
                         "speed": self._speed}

    async def run(self) -> None:
        """Serve the connection until the page goes away."""
        if not _same_origin(self.websocket):
            await self.websocket.close(code=POLICY_VIOLATION)
            return
        await self.websocket.accept()
        if len(self.sessions) >= MAX_SESSIONS:
            await self.error(f"too many open pages ({MAX_SESSIONS}): close one and reload")
            await self.websocket.close(code=POLICY_VIOLATION)
            return
        session_id = secrets.token_urlsafe(16)
        self.session = self.sessions[session_id] = await asyncio.to_thread(Session)
        player = asyncio.create_task(self._player())
        try:
            await self.send({"type": "hello", "session": session_id})
            await self._send_reset()
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self.handle(message.get("text"))
        except WebSocketDisconnect:
            pass
        finally:
            player.cancel()
            self.sessions.pop(session_id, None)

    # -- messages from the page ------------------------------------------------------------
    async def handle(self, text: str | None) -> None:
        """Act on one message; anything wrong with it is answered with an ``error``."""
        if text is None:
            return await self.error("messages must be JSON text, not binary")
        if len(text) > MAX_MESSAGE:
            return await self.error(f"message too long ({len(text)} characters; at most "
                                    f"{MAX_MESSAGE})")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            return await self.error(f"malformed message, not JSON: {exc}")
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return await self.error("malformed message: expected a JSON object with a 'type'")
        kind = message["type"]
        handler = self.handlers.get(kind)
        if handler is None:
            return await self.error(f"unknown message type {kind!r}; expected one of "
                                    f"{', '.join(self.handlers)}", kind)
        try:
            await handler(message)
        except (ValueError, TypeError, FloatingPointError) as exc:
            await self.error(str(exc), kind)
        except Exception as exc:  # the server stays up whatever a message does
            log.exception("playground message %r failed", kind)
            await self.error(f"internal error: {type(exc).__name__}: {exc}", kind)

    async def _configure(self, message: dict) -> None:
        config = Config.from_dict(message.get("config"))
        await asyncio.to_thread(self.session.reset, config)
        await self._send_reset()

    async def _play(self, message: dict) -> None:
        self.playing.set()
        await self._send_state()

    async def _pause(self, message: dict) -> None:
        self.playing.clear()
        await self._send_state()

    async def _step(self, message: dict) -> None:
        self.playing.clear()
        await self._send_state()
        await asyncio.to_thread(self.session.step)
        await self.send_frame()

    async def _reset(self, message: dict) -> None:
        await asyncio.to_thread(self.session.reset)
        await self._send_reset()

    async def _speed(self, message: dict) -> None:
        value = message.get("epochs_per_frame")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 1 <= value <= MAX_EPOCHS_PER_FRAME):
            raise ValueError(f"speed: epochs_per_frame must be a whole number in [1, "
                             f"{MAX_EPOCHS_PER_FRAME}] or null, got {value!r}")
        self.epochs_per_frame = value
        await self._send_state()

    async def _inspect(self, message: dict) -> None:
        target = message.get("target")
        if target is not None and not isinstance(target, dict):
            raise ValueError("inspect: target must be an object {layer, neuron, weight, "
                             "sample} or null")
        await asyncio.to_thread(self.session.inspect, target)
        await self.send_frame()

    # -- messages to the page --------------------------------------------------------------
    async def send(self, message: dict) -> None:
        async with self.send_lock:
            await self.websocket.send_text(to_json(message))

    async def error(self, text: str, request: str | None = None) -> None:
        """Tell the page that something went wrong (``request``: the message type)."""
        await self.send({"type": "error", "message": text, "request": request})

    async def send_frame(self) -> None:
        frame = await asyncio.to_thread(self.session.frame)
        inspection = await asyncio.to_thread(self.session.inspection)
        await self.send({"type": "frame", "playing": self.playing.is_set(), **frame,
                         "inspection": inspection})

    async def _send_state(self) -> None:
        await self.send({"type": "state", "playing": self.playing.is_set(),
                         "epochs_per_frame": self.epochs_per_frame})

    async def _send_reset(self) -> None:
        description = await asyncio.to_thread(self.session.describe)
        await self.send({"type": "reset", "playing": self.playing.is_set(),
                         "epochs_per_frame": self.epochs_per_frame, **description})
        await self.send_frame()

    async def _player(self) -> None:
        """While playing: train for part of each frame's time, then send the frame."""
        period = 1.0 / FRAMES_PER_SECOND
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.playing.wait()
                started = loop.time()
                try:
                    await asyncio.to_thread(self.session.train_for, period * TRAIN_SHARE,
                                            self.epochs_per_frame)
                except FloatingPointError as exc:
                    self.playing.clear()
                    await self.error(f"{exc}; then press reset", "play")
                except Exception as exc:  # keep serving the page
                    log.exception("playground training failed")
                    self.playing.clear()
                    await self.error(f"internal error: {type(exc).__name__}: {exc}", "play")
                await self.send_frame()
                await asyncio.sleep(max(0.0, period - (loop.time() - started)))
        except (WebSocketDisconnect, RuntimeError):  # the page went away mid-send
            return


def _same_origin(websocket: WebSocket) -> bool:
    """Refuse pages of other sites (a browser always sends Origin; other clients may not)."""
    origin = websocket.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == websocket.headers.get("host")
