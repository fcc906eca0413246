"""Stop a diverging run before its non-finite numbers reach a checkpoint.

:func:`matrixprop.fit` stops when the loss becomes NaN or infinite. :class:`DivergenceGuard` adds
the gradient and the weights, checked before any later callback (such as a checkpoint) sees them.
"""

from __future__ import annotations

import math

import numpy as np

from .callbacks import Callback, TrainingState

__all__ = ["DivergenceGuard", "HINT"]

HINT = "lower the learning rate or clip the gradients (clip_grad_norm)"


class DivergenceGuard(Callback):
    """Raise ``FloatingPointError`` naming the epoch (and step) when the gradient or the weights
    stop being finite.

    Put it first in the callback list, so that it runs before callbacks that save the network.
    At the end of each epoch it checks the weights and the last step's gradient; with
    ``every_step`` it checks the gradient after every step too (a per-batch callback: the
    compiled engine then runs each step as a call of its own, slower at small batches). Without
    it, a non-finite gradient in the middle of an epoch makes the weights non-finite, so the next
    step's loss is non-finite and :func:`matrixprop.fit` stops there, naming that step.

    Each check is one dot product of the array with itself (a BLAS call); only when that
    overflows are the entries inspected one by one.

    Parameters
    ----------
    every_step : bool
        Check the gradient after every step, not only at the end of each epoch.
    hint : str
        What the message suggests doing about it.
    """

    def __init__(self, every_step: bool = False, hint: str = HINT):
        self.every_step = bool(every_step)
        self.hint = hint

    @property
    def wants_batches(self) -> bool:
        return self.every_step

    def on_batch_end(self, state: TrainingState) -> None:
        self._check(state.network.grads, "gradient", state, f", step {state.step + 1}")

    def on_epoch_end(self, state: TrainingState) -> None:
        self._check(state.network.grads, "gradient", state, ", last step")
        self._check(state.network.params, "weights", state, "")

    def _check(self, values: np.ndarray, what: str, state: TrainingState, where: str) -> None:
        if not _finite(values):
            raise FloatingPointError(
                f"the {what} became non-finite ({_first_bad(values)}) in epoch "
                f"{state.epoch + 1}{where}: {self.hint}")


def _finite(values: np.ndarray) -> bool:
    """Whether every entry is finite: the fast dot product, then the exact check if it
    overflowed (huge but finite entries)."""
    with np.errstate(over="ignore", invalid="ignore"):
        square = float(np.dot(values, values))
    return math.isfinite(square) or bool(np.isfinite(values).all())


def _first_bad(values: np.ndarray) -> str:
    index = int(np.flatnonzero(~np.isfinite(values))[0])
    return f"{values[index]} at flat index {index}"
