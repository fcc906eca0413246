"""``matrixprop playground``: serve the playground page on this machine and open it."""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from ._common import stderr, stdout

_EXTRA = "the playground needs the web extra: pip install 'matrixprop[web]'"


def playground(
    port: Annotated[int, typer.Option(
        help="Port to listen on (0: any free port).", min=0, max=65535)] = 8765,
    host: Annotated[str, typer.Option(
        help="Address to listen on; the default serves this machine only.")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Do not open the page in the default browser.")] = False,
) -> None:
    """Train small networks in a web page, with every number of backprop; Ctrl+C stops it."""
    try:
        from ..playground.server import serve
    except ImportError:
        stderr.print(f"error: {_EXTRA}", markup=False)
        raise typer.Exit(1) from None

    def ready(url: str) -> None:
        stdout.print(f"matrixprop playground: {url}  (Ctrl+C stops it)", markup=False)
        if not no_browser:
            webbrowser.open(url)

    serve(host, port, on_ready=ready)
