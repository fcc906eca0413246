"""Callbacks: code that runs at the stages of :func:`matrixprop.fit`.

A callback subclasses :class:`Callback` and overrides any of its hooks. Each hook receives the
:class:`TrainingState`, whose ``stop_training`` flag a callback may set to end training after the
current epoch. ``on_batch_end`` is only called for callbacks that override it, so an unused hook
costs nothing per step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Callback", "TrainingState", "EarlyStopping", "LossLogger", "ProgressBar"]


@dataclass
class TrainingState:
    """What callbacks can read (and ``stop_training``, which they may set)."""

    network: object
    optimizer: object
    epochs: int
    steps_per_epoch: int
    n_samples: int
    history: object
    epoch: int = 0  # counted from 0
    step: int = 0  # within the epoch
    batch_loss: float = math.nan
    logs: dict = field(default_factory=dict)  # the metrics of the last finished epoch
    stop_training: bool = False


class Callback:
    """Base class; every hook does nothing.

    ``root_only = True`` marks a callback that prints or writes files: in data-parallel
    training (:mod:`matrixprop.distributed`) only rank 0 runs it. The others run on every rank.
    """

    root_only: bool = False

    def on_train_begin(self, state: TrainingState) -> None: ...

    def on_epoch_begin(self, state: TrainingState) -> None: ...

    def on_batch_end(self, state: TrainingState) -> None: ...

    def on_epoch_end(self, state: TrainingState) -> None: ...

    def on_train_end(self, state: TrainingState) -> None: ...

    @property
    def wants_batches(self) -> bool:
        return type(self).on_batch_end is not Callback.on_batch_end


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, and put
    back the weights of the best epoch (``restore_best``).

    ``monitor`` is a key of the epoch logs: ``"val_loss"`` (default; falls back to ``"loss"``
    without validation data), ``"loss"``, ``"val_accuracy"``... Losses are minimized, accuracies
    maximized.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best

    def on_train_begin(self, state):
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0
        self._best_params = np.empty_like(state.network.params)

    def _value(self, logs):
        key = self.monitor if self.monitor in logs else "loss"
        value = logs[key]
        return -value if "accuracy" in key else value

    def on_epoch_end(self, state):
        value = self._value(state.logs)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            np.copyto(self._best_params, state.network.params)
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.stop_training = True

    def on_train_end(self, state):
        state.history.best_epoch = self.best_epoch
        if self.restore_best and self.best_epoch >= 0:
            np.copyto(state.network.params, self._best_params)


class LossLogger(Callback):
    """Log each epoch's metrics with the :mod:`logging` module (logger ``matrixprop``)."""

    root_only = True

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO):
        self.logger = logger or logging.getLogger("matrixprop")
        self.level = level

    def on_epoch_end(self, state):
        metrics = "  ".join(f"{k}={v:.4g}" for k, v in state.logs.items())
        self.logger.log(self.level, "epoch %d/%d  %s", state.epoch + 1, state.epochs, metrics)


class ProgressBar(Callback):
    """A rich progress bar per epoch with the running loss, accuracy and samples per second.

    Needs the ``rich`` package (``pip install matrixprop[cli]``). ``console`` defaults to a
    console on standard error.
    """

    root_only = True

    def __init__(self, console=None, every: int = 1):
        self.console = console
        self.every = max(1, int(every))

    def on_train_begin(self, state):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[extra]}"),
            TimeRemainingColumn(), console=self.console or Console(stderr=True), transient=False,
        )
        self._progress.start()

    def on_epoch_begin(self, state):
        label = f"{state.epoch + 1}/{state.epochs}"
        self._task = self._progress.add_task("train", total=state.steps_per_epoch, epoch=label,
                                             loss=math.nan, extra="")

    def on_batch_end(self, state):
        if state.step % self.every == 0:
            self._progress.update(self._task, completed=state.step + 1, loss=state.batch_loss)

    def on_epoch_end(self, state):
        logs = state.logs
        extra = "  ".join(f"{k} {logs[k]:.4f}" for k in ("accuracy", "val_loss", "val_accuracy")
                          if k in logs)
        extra += f"  {logs['samples_per_second']:,.0f} samples/s"
        self._progress.update(self._task, completed=state.steps_per_epoch, loss=logs["loss"],
                              extra=extra)

    def on_train_end(self, state):
        self._progress.stop()
