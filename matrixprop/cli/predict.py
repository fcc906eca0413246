"""``matrixprop predict``: run a model on the samples of a CSV, NPZ or IDX file."""

from __future__ import annotations

import io as bytes_io
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..data import read_csv, read_idx, read_npz
from ..io import atomic_write, read_model
from ..training import class_labels
from ._common import usage_error

_OUTPUTS = (".csv", ".npy")


def predict(
    model: Annotated[Path, typer.Argument(help="A model file written by train or net.save.")],
    input: Annotated[Path, typer.Argument(
        help="Samples: a .csv file (one per row; a last target column is ignored), an .npz "
             "archive (its array X) or an IDX file (images, raw or .gz).")],
    out: Annotated[Path | None, typer.Option(
        help="Write to this .csv or .npy file instead of printing CSV.", show_default=False)
                   ] = None,
    classes: Annotated[bool, typer.Option(
        "--classes", help="Predicted class indices instead of the output activations.")
                       ] = False,
) -> None:
    """Predict outputs (probabilities for a softmax model) or classes for each sample.

    uint8 inputs (IDX images, uint8 arrays) are scaled to [0, 1] by 255 like the training data;
    other inputs are used as they are.
    """
    if out is not None and out.suffix.lower() not in _OUTPUTS:
        raise usage_error(f"{out.name}: the output must end in .csv or .npy", "--out")
    net, _ = read_model(model)
    X = read_inputs(input, net.n_inputs)
    outputs = net.predict(X)
    result = class_labels(outputs).astype(np.intp) if classes else outputs
    if out is None:
        _write_csv(sys.stdout, result, classes)
    elif out.suffix.lower() == ".npy":
        buffer = bytes_io.BytesIO()
        np.save(buffer, result, allow_pickle=False)
        atomic_write(out, buffer.getvalue())
    else:
        text = bytes_io.StringIO()
        _write_csv(text, result, classes)
        atomic_write(out, text.getvalue().encode())


def read_inputs(path: Path, n_inputs: int) -> np.ndarray:
    """The samples of a CSV, NPZ or IDX file as a 2-D array, uint8 pixels scaled to [0, 1]."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        X, _ = read_csv(path, target_column=None)
        if X.shape[1] == n_inputs + 1:  # a last target column, ignored
            X = X[:, :-1]
    elif suffix == ".npz":
        X = read_npz(path, require_y=False)["X"]
    else:
        X = read_idx(path)
        if X.ndim == 1:
            raise ValueError(f"{path}: a 1-D IDX file holds labels, not samples")
    X = X.reshape(len(X), -1)
    if X.dtype == np.uint8:
        return X / np.float32(255)
    return X


def _write_csv(stream, result: np.ndarray, classes: bool) -> None:
    if classes:
        np.savetxt(stream, result[:, None], fmt="%d", header="class", comments="")
    else:
        header = ",".join(f"output_{k}" for k in range(result.shape[1]))
        np.savetxt(stream, result, fmt="%.9g", delimiter=",", header=header, comments="")
