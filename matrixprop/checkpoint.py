"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is a model file (see :mod:`matrixprop.io`) with more in it: the optimizer's state
buffers as tensors named ``optimizer.{name}``, and in the metadata a ``checkpoint`` entry with the
epochs completed, the optimizer's configuration, step count and learning-rate scale, the state of
the network's dropout generator, the shuffling seed and the history so far.

Since :func:`matrixprop.fit` draws each epoch's sample order from the seed and the epoch number
only, restoring all of this and calling ``fit(..., initial_epoch=checkpoint.epoch, seed=seed)``
continues a run bit for bit as if it had never stopped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import io
from . import optimizers as optimizers_module
from ._validation import check_finite
from .callbacks import Callback, TrainingState
from .network import Network
from .training import History

__all__ = ["Checkpoint", "CheckpointCallback", "save_checkpoint", "load_checkpoint"]

_PREFIX = io.OPTIMIZER_PREFIX


@dataclass
class Checkpoint:
    """A run's state after ``epoch`` completed epochs (see :func:`load_checkpoint`).

    ``network`` has its parameters and dropout generator restored; ``optimizer`` is set up on it
    with its state restored; ``metadata`` holds the rest of the file's metadata document (the
    loss, the training configuration...).
    """

    network: Network
    optimizer: optimizers_module.Optimizer
    epoch: int
    seed: int
    history: History
    metadata: dict = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike[str], net: Network,
                    optimizer: optimizers_module.Optimizer, *, epoch: int, seed: int,
                    history: History, metadata: Mapping | None = None) -> Path:
    """Write a checkpoint of ``net`` and ``optimizer`` after ``epoch`` completed epochs."""
    state = optimizer.state_dict()
    buffers = {f"{_PREFIX}{name}": state[name] for name in _buffer_names(state)}
    record = {
        "epoch": epoch,
        "seed": seed,
        "optimizer": optimizer.config(),
        "optimizer_steps": state["t"],
        "lr_scale": state["lr_scale"],
        "rng_state": net.rng.bit_generator.state,
        "history": {"epochs": history.epochs, **history.history},
    }
    document = io.model_document(net, {**(metadata or {}), "checkpoint": record})
    return io.write_file(path, {**net.state_dict(), **buffers}, document)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` and restore its network and optimizer.

    Raises
    ------
    ValueError
        Naming the file, for anything :func:`matrixprop.load` refuses, a missing or malformed
        ``checkpoint`` entry, or optimizer buffers that do not fit the network.
    """
    tensors, document = io.read_file(path)
    net = io.network_from(path, document, tensors)
    record = document.get("checkpoint")
    if not isinstance(record, dict):
        raise ValueError(f"{path}: not a checkpoint (no 'checkpoint' metadata entry)")
    try:
        epoch, seed = _count(record["epoch"], "epoch"), _count(record["seed"], "seed")
        if not isinstance(record["rng_state"], dict):
            raise TypeError(f"rng_state must be a mapping, got {record['rng_state']!r}")
        net.rng.bit_generator.state = record["rng_state"]
        optimizer = optimizers_module.get(record["optimizer"])
        optimizer.setup(net)
        buffers = {name[len(_PREFIX):]: value for name, value in tensors.items()
                   if name.startswith(_PREFIX)}
        expected = _buffer_names(optimizer.state_dict())
        if sorted(buffers) != expected:
            raise ValueError(f"optimizer buffers {sorted(buffers)} do not fit "
                             f"{optimizer.name!r} (expected {expected})")
        for name, value in buffers.items():
            check_finite(value, f"optimizer buffer {name!r}")
        optimizer.load_state_dict({**buffers, "t": _count(record["optimizer_steps"], "steps"),
                                   "lr_scale": _scale(record["lr_scale"])})
        history = _history(record["history"])
    except (IndexError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{path}: invalid checkpoint ({type(exc).__name__}: {exc})") from None
    if len(history) != epoch:
        raise ValueError(f"{path}: invalid checkpoint (a history of {len(history)} epochs "
                         f"after epoch {epoch})")
    rest = {key: value for key, value in document.items() if key != "checkpoint"}
    return Checkpoint(net, optimizer, epoch, seed, history, rest)


def _buffer_names(state: Mapping) -> list[str]:
    """The names of an optimizer's state buffers in its ``state_dict()``."""
    return sorted(name for name in state if name not in ("t", "lr_scale"))


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _scale(value) -> float:
    """A learning-rate scale: a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"lr_scale must be a finite number > 0, got {value!r}")
    return float(value)


def _history(record) -> History:
    """A :class:`History` from the ``{"epochs": [...], key: [...]}`` form of a checkpoint."""
    if not isinstance(record, dict) or not isinstance(record.get("epochs"), list):
        raise TypeError("history must be a mapping with a list of epochs")
    epochs = record["epochs"]
    for key, values in record.items():
        if not (isinstance(values, list) and len(values) == len(epochs)):
            raise ValueError(f"history {key!r} must list one value per epoch")
    history = History()
    for row, epoch in enumerate(epochs):
        history.append(_count(epoch, "history epoch"),
                       {key: _number(values[row]) for key, values in record.items()
                        if key != "epochs"})
    return history


def _number(value) -> float:
    if value is None:  # a non-finite value, stored as null
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"history values must be numbers, got {value!r}")
    return float(value)


class CheckpointCallback(Callback):
    """Write a checkpoint to ``path`` at the end of every epoch, and keep the whole history.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file, replaced atomically each epoch.
    seed : int
        The seed given to :func:`matrixprop.fit` (its shuffling order).
    history : History, optional
        The history of the epochs before this run (when resuming).
    metadata : mapping, optional
        Stored with every checkpoint (the loss, the training configuration...).

    Attributes
    ----------
    history : History
        Every epoch so far, those of earlier runs included.
    """

    root_only = True

    def __init__(self, path: str | os.PathLike[str], seed: int, history: History | None = None,
                 metadata: Mapping | None = None):
        self.path = Path(path)
        self.seed = seed
        self.history = history if history is not None else History()
        self.metadata = dict(metadata or {})

    def on_epoch_end(self, state: TrainingState) -> None:
        self.history.append(state.epoch, dict(state.logs))
        self.history.engine = state.history.engine  # the engine of this run's epochs
        self.history.engine_reason = state.history.engine_reason
        save_checkpoint(self.path, state.network, state.optimizer, epoch=state.epoch + 1,
                        seed=self.seed, history=self.history, metadata=self.metadata)

