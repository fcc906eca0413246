"""The playground's ASGI application (Starlette): the page, its static files, the API, the stream.

Routes:

- ``GET /``: the page; ``GET /static/{file}``: its script and style, from the package's
  ``static`` folder only (Starlette's ``StaticFiles`` refuses paths that leave it);
- ``GET /api/options``: the menus' choices, the limits and the default settings;
- ``GET /api/sessions/{id}/model.safetensors``, ``.../data.npz``, ``.../command``: the exports
  of an open page's run (404 for an unknown id);
- ``WS /ws``: the run itself; see :mod:`matrixprop.playground.stream`.

Errors are JSON ``{"error": message}`` with their HTTP status.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from .config import choices
from .export import command_line, data_bytes, data_filename, model_bytes, model_filename
from .session import Session
from .stream import Connection

__all__ = ["STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"


def create_app() -> Starlette:
    """A new playground application, with no open sessions."""
    sessions: dict[str, Session] = {}

    def session_of(request: Request) -> Session:
        session = sessions.get(request.path_params["session"])
        if session is None:
            raise HTTPException(404, "no open page has this session id (reload the page)")
        return session

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def options(request: Request) -> Response:
        return JSONResponse(choices())

    async def model(request: Request) -> Response:
        session = session_of(request)
        payload = await run_in_threadpool(model_bytes, session)
        return _download(payload, model_filename(session))

    async def data(request: Request) -> Response:
        session = session_of(request)
        payload = await run_in_threadpool(data_bytes, session)
        return _download(payload, data_filename(session))

    async def command(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(command_line, session_of(request)))

    async def stream(websocket: WebSocket) -> None:
        await Connection(websocket, sessions).run()

    routes = [
        Route("/", index),
        Route("/api/options", options),
        Route("/api/sessions/{session}/model.safetensors", model),
        Route("/api/sessions/{session}/data.npz", data),
        Route("/api/sessions/{session}/command", command),
        WebSocketRoute("/ws", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _error})


def _download(payload: bytes, filename: str) -> Response:
    return Response(payload, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))
