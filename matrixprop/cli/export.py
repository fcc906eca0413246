"""``matrixprop export``: a model file in a format other runtimes read (ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import onnx
from ..io import read_model
from ._common import usage_error

_FORMATS = ("onnx",)


def export(
    model: Annotated[Path, typer.Argument(help="A model file written by train or mp.save.")],
    out: Annotated[Path, typer.Option(help="The file to write, e.g. model.onnx.",
                                      show_default=False)],
    format: Annotated[str, typer.Option(help="The format to write: onnx.")] = "onnx",
) -> None:
    """Export a model: ONNX is a graph of Gemm and activation nodes, float32 input
    (batch, n_in), output the network's output activations."""
    if format not in _FORMATS:
        raise usage_error(f"unknown format {format!r}; expected one of {', '.join(_FORMATS)}",
                          "--format")
    net, _ = read_model(model)
    try:
        path = onnx.export(net, out)
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    typer.echo(f"wrote {path}")
