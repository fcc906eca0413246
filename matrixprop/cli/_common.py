"""Pieces the commands share: option types and checks, consoles, scoring a network on data."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Literal

import numpy as np
import typer
from rich.console import Console

from .. import _validation as check
from .. import activations, initializers, losses, optimizers
from .._resources import MemoryEstimate, available_memory, estimate, format_bytes
from ..data import load_dataset
from ..io import to_json
from ..network import Network, default_loss
from ..training import class_labels, is_classifier

ActivationName = Literal[tuple(activations.names())]
LossName = Literal[tuple(losses.names())]
Reduction = Literal[losses.REDUCTIONS]
OptimizerName = Literal[tuple(optimizers.names())]
InitName = Literal[tuple(initializers.names())]
DType = Literal["float32", "float64"]

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def in_range(low: float, high: float = math.inf, *, low_open: bool = False,
             high_open: bool = True) -> Callable[[float | None], float | None]:
    """A typer callback that accepts finite numbers in the given interval (and None)."""
    if high == math.inf:
        wanted = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def accept(value: float | None) -> float | None:
        if value is None:
            return None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            raise typer.BadParameter(f"must be {wanted}, got {value:g}")
        return value

    return accept


def usage_error(message: str, option: str) -> typer.BadParameter:
    """A usage error (exit code 2) about ``option``."""
    return typer.BadParameter(message, param_hint=f"'{option}'")


def check_memory(sizes: list[int], *, activation: str, output: str, dtype: str,
                 dropout: float = 0.0, optimizer=None, batch_rows: int = 0,
                 predict_rows: int = 0, data_bytes: int = 0, allocated: tuple[str, ...] = (),
                 batch_flag: str = "--batch-size") -> None:
    """Refuse, as a usage error, a network (and batches) whose memory exceeds what the machine
    has available (see :func:`matrixprop._resources.estimate`), naming the option behind the
    largest part: ``--layers``, ``batch_flag`` for the batch workspaces, ``--dataset`` for the
    data. ``allocated`` lists the parts already in memory, left out."""
    available = available_memory()
    if available is None:  # unknown on this platform: try
        return
    need = estimate(sizes, activation=activation, output_activation=output, dtype=dtype,
                    dropout=dropout, optimizer=optimizer, batch_rows=batch_rows,
                    predict_rows=predict_rows, data_bytes=data_bytes)
    need = MemoryEstimate({part: size for part, size in need.parts.items()
                           if part not in allocated})
    if need.total <= available:
        return
    flag = {"batch workspaces": batch_flag, "prediction workspaces": "--dataset",
            "data": "--dataset"}.get(need.largest, "--layers")
    what = f" with {optimizer.name}" if optimizer is not None else ""
    rows = f" and batches of {batch_rows}" if batch_rows else ""
    raise usage_error(f"{','.join(map(str, sizes))}{what} in {dtype}{rows} needs "
                      f"{need.describe()}, but only {format_bytes(available)} of memory are "
                      "available", flag)


def print_json(document) -> None:
    """Write ``document`` as indented JSON on standard output."""
    sys.stdout.write(to_json(document, indent=2) + "\n")


def natural_output(loss: str, hidden_activation: str) -> str:
    """The output activation a loss calls for: softmax before cross-entropy, sigmoid before binary
    cross-entropy, identity before MSE, and the hidden activation before half SSE (the book's
    networks use one f everywhere)."""
    return {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid",
            "mse": "identity"}.get(loss, hidden_activation)


def model_loss(net: Network, document: dict, name: str | None = None,
               reduction: str | None = None) -> losses.Loss:
    """The loss to score a model with: ``name`` and ``reduction`` where given, else those its
    file records, else the network's default loss with a mean."""
    saved = document.get("loss") if isinstance(document.get("loss"), dict) else {}
    return losses.get(name or saved.get("name") or default_loss(net),
                      reduction=reduction or saved.get("reduction") or "mean")


def model_dataset(model, net: Network, document: dict, dataset: str | None, data_dir):
    """The dataset to score ``model`` on: ``dataset``, else the one it was trained on, checked
    against the model's inputs."""
    training = document.get("training")
    recorded = training.get("dataset") if isinstance(training, dict) else None
    name = dataset or (recorded if isinstance(recorded, str) else None)
    if name is None:
        raise usage_error(f"{model} does not record its dataset: pass --dataset", "--dataset")
    data = load_dataset(name, data_dir, dtype=net.dtype)
    if data.n_features != net.n_inputs:
        raise ValueError(f"{data.name} has {data.n_features} features per sample, but the "
                         f"model takes {net.n_inputs}")
    return data


def score(net: Network, loss: losses.Loss, X: np.ndarray, y: np.ndarray) -> dict:
    """The loss of ``net`` on ``(X, y)`` and, for a classifier, its accuracy and predictions.

    Returns a dict with ``loss``, ``accuracy`` (None for regression), ``labels`` and
    ``predicted`` (class indices, None for regression).
    """
    X = check.inputs(X, net.n_inputs, net.dtype)
    Y = check.targets(y, X.shape[0], net.n_outputs, loss, net.dtype)
    outputs = net.predict(X)
    result = {"loss": loss(outputs, Y), "accuracy": None, "labels": None, "predicted": None}
    if is_classifier(net):
        labels = class_labels(Y).astype(np.intp)  # one-hot rows or 0/1 targets -> class indices
        predicted = class_labels(outputs).astype(np.intp)
        result.update(labels=labels, predicted=predicted,
                      accuracy=float(np.mean(predicted == labels)))
    return result
