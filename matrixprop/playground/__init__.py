"""The playground: a local web page that trains a small network with the real engine and shows
every number of backpropagation.

Start it with ``matrixprop playground`` (needs the ``web`` extra: ``pip install
"matrixprop[web]"``), or from Python::

    from matrixprop.playground import serve
    serve(port=8765)

See ``docs/playground.md``.
"""

from .app import create_app
from .config import Config
from .server import make_server, serve
from .session import Session

__all__ = ["Config", "Session", "create_app", "make_server", "serve"]
