"""Ctrl-C during ``train``: finish the current epoch, keep its checkpoint, then stop.

A run can only continue bit for bit from the end of an epoch (each epoch's order depends on the
seed and the epoch number, and :func:`matrixprop.fit` starts at epoch boundaries; the compiled
epochs run a whole epoch without returning to Python), so the first Ctrl-C lets the current
epoch finish and its checkpoint be written. A second Ctrl-C stops at once, keeping the checkpoint
of the epoch before (a checkpoint being written is either finished or discarded).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from ..callbacks import Callback, TrainingState

__all__ = ["StopOnInterrupt", "EXIT_CODE"]

EXIT_CODE = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


class StopOnInterrupt(Callback):
    """While entered (``with``), the first SIGINT asks training to stop after the current epoch;
    a second one raises KeyboardInterrupt as usual.

    Parameters
    ----------
    notice : callable
        Called with a one-line message when the first SIGINT arrives.

    Attributes
    ----------
    requested : bool
        Whether a SIGINT arrived.
    """

    def __init__(self, notice: Callable[[str], None]):
        self.notice = notice
        self.requested = False
        self._previous = None
        self._installed = False

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():  # where signals are handled
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGINT, previous)
            self._installed = False

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.notice("interrupt: stopping once this epoch and its checkpoint are done "
                    "(Ctrl-C again to stop at once)")

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.requested:
            state.stop_training = True
