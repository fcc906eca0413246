"""Running matrixprop callbacks (:mod:`matrixprop.callbacks`) from the estimators' solvers."""

from __future__ import annotations

from collections.abc import Sequence

from ..callbacks import Callback, TrainingState
from ..training import History

__all__ = ["CallbackRunner"]


class CallbackRunner:
    """The hooks of a list of callbacks around one fit, with the state they read.

    Each epoch of a stochastic solver, or each iteration of L-BFGS, is an epoch for the
    callbacks; ``epoch_end`` returns True when one of them asked to stop.
    """

    def __init__(self, callbacks: Sequence[Callback] | None, net, optimizer, epochs: int,
                 steps_per_epoch: int, n_samples: int):
        self.callbacks = list(callbacks or ())
        self.batch_callbacks = [c for c in self.callbacks if c.wants_batches]
        self.state = TrainingState(net, optimizer, epochs, steps_per_epoch, n_samples, History())

    def train_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(self.state)

    def epoch_begin(self, epoch: int) -> None:
        self.state.epoch = epoch
        for callback in self.callbacks:
            callback.on_epoch_begin(self.state)

    def batch_end(self, step: int, loss: float) -> None:
        self.state.step, self.state.batch_loss = step, loss
        for callback in self.batch_callbacks:
            callback.on_batch_end(self.state)

    def epoch_end(self, logs: dict) -> bool:
        self.state.history.append(self.state.epoch, logs)
        self.state.logs = logs
        for callback in self.callbacks:
            callback.on_epoch_end(self.state)
        return self.state.stop_training

    def train_end(self) -> None:
        for callback in self.callbacks:
            callback.on_train_end(self.state)
