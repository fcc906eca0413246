"""The engines that run a training's steps, behind one interface.

A :class:`Run` describes a training: the network, its loss and optimizer, the data, the batch
size, the regularization and clipping, the gradient hooks. An engine runs the steps of that
description, an epoch at a time (:meth:`NumpyEngine.run_epoch`), and reports the epoch's loss
total, its hit count and the first step whose loss was not finite:

* :class:`NumpyEngine`, the reference: each step is the network's forward and backward pass
  (the equations, one NumPy call each), :meth:`Run.finish_gradient`, then the optimizer;
* the compiled engine (:class:`matrixprop.accelerated.CompiledEngine`, ``matrixprop[fast]``),
  which runs the same description as fused kernels, whole epochs per call.

:func:`choose` makes the one decision between them and says why (:attr:`NumpyEngine.reason`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import accelerated

__all__ = ["Run", "NumpyEngine", "choose", "BatchEnd"]

# on_batch(step, batch_loss): called after each step when a caller asks for it
BatchEnd = Callable[[int, float], None]


@dataclass
class Run:
    """A training described for an engine.

    ``X``, ``Y`` and ``sample_weight`` are validated and in the network's dtype; ``labels``
    are the class indices of a classifier's targets (None: no hit count). ``l2``: the L2
    coefficient, so that the gradient gains ``l2 * W`` over all weights, or with
    ``l2_per_batch`` (scikit-learn's objective) ``l2 / count * W``, ``count`` the batch's
    samples, and the batch loss the term ``0.5 * l2 / count * ||W||^2``. ``clip``: the
    largest norm of a batch gradient. ``gradient_hooks`` are called with the flat gradient
    once it is complete. ``shards``: in data-parallel training, this process's part of every
    batch (see :class:`matrixprop.distributed.Shards`).
    """

    net: object
    loss: object
    optimizer: object
    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray | None
    labels: np.ndarray | None
    batch_size: int
    l2: float = 0.0
    l2_per_batch: bool = False
    clip: float | None = None
    gradient_hooks: Sequence[Callable[[np.ndarray], None]] = ()
    dropout_rng: np.random.Generator | None = None
    shards: object = None
    halt: bool = True  # stop an epoch at its first non-finite loss
    _scratch: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def finish_gradient(self, count: float) -> float:
        """The one place where a batch's gradient is complete: the all-reduce of data-parallel
        training, then L2, the gradient hooks and clipping. Returns the L2 term of the batch
        loss (0 unless ``l2_per_batch``); ``count``: the batch's samples."""
        net, grads = self.net, self.net.grads
        if self.shards is not None:
            self.shards.allreduce(grads)
        term = 0.0
        if self.l2:
            W = net.params[: net.n_weights]
            factor = self.l2 / count if self.l2_per_batch else self.l2
            if self._scratch is None:
                self._scratch = np.empty(net.n_weights, net.dtype)
            np.multiply(W, factor, out=self._scratch)
            grads[: net.n_weights] += self._scratch  # d/dW of (factor / 2) ||W||^2
            if self.l2_per_batch:
                term = 0.5 * factor * float(np.dot(W, W))
        for hook in self.gradient_hooks:
            hook(grads)
        if self.clip is not None:
            norm = math.sqrt(float(np.vdot(grads, grads)))
            if norm > self.clip:
                grads *= self.clip / norm
        return term


class NumpyEngine:
    """The reference engine: every step in NumPy, through the network's own passes."""

    name = "numpy"

    def __init__(self, run: Run, reason: str | None = None):
        self.run = run
        self.reason = reason  # why the compiled engine does not run this training
        self._buffers: dict[int, dict] = {}
        self._weights = None if run.sample_weight is None else np.empty_like(run.sample_weight)

    def _batch_buffers(self, b: int) -> dict:
        """Reused arrays for a gathered batch of ``b`` rows."""
        bufs = self._buffers.get(b)
        if bufs is None:
            run, net = self.run, self.run.net
            bufs = self._buffers[b] = {
                "X": np.empty((b, net.n_inputs), net.dtype),
                "Y": np.empty((b, net.n_outputs), net.dtype),
                "w": None if run.sample_weight is None else np.empty(b, net.dtype),
                "labels": None if run.labels is None else np.empty(b, run.labels.dtype),
                "predicted": np.empty(b, np.intp),
                "hits": np.empty(b, bool),
                "workspace": net.workspace(b),
            }
        return bufs

    def _gather(self, rows) -> tuple:
        """The buffers of batch ``rows`` and its inputs, targets, weights and labels (None
        where the run has none): views for a slice, gathered into the buffers for an index
        array."""
        run = self.run
        arrays = (run.X, run.Y, run.sample_weight, run.labels)
        if isinstance(rows, slice):
            bufs = self._batch_buffers(rows.stop - rows.start)
            return bufs, *(None if a is None else a[rows] for a in arrays)
        bufs = self._batch_buffers(rows.shape[0])
        targets = (bufs["X"], bufs["Y"], bufs["w"], bufs["labels"])
        return bufs, *(None if a is None else np.take(a, rows, axis=0, out=out, mode="clip")
                       for a, out in zip(arrays, targets, strict=True))  # clip: unbuffered

    def _count(self, rows) -> float:
        """The samples of batch ``rows``: its rows, or the sum of their weights."""
        w = self.run.sample_weight
        if w is None:
            return rows.stop - rows.start if isinstance(rows, slice) else rows.shape[0]
        if isinstance(rows, slice):
            return float(np.sum(w[rows]))
        return float(np.sum(np.take(w, rows, out=self._weights[: rows.shape[0]], mode="clip")))

    def step(self, rows) -> tuple[float, int]:
        """One update from the samples ``rows`` (a slice, or an index array to gather).

        Returns the batch loss and, for classifiers, how many of its samples the network
        classified right before the update. In steady state this allocates no arrays.
        """
        value, hits = self.loss_and_gradient(rows)
        self.run.optimizer.step()
        return value, hits

    def loss_and_gradient(self, rows) -> tuple[float, int]:
        """The loss of batch ``rows`` (with its L2 term when the run's L2 is per batch), its
        hit count, and its complete gradient in ``net.grads`` (no update)."""
        run, net = self.run, self.run.net
        count = self._count(rows)
        local = rows if run.shards is None else run.shards.part(rows)
        bufs, xb, yb, wb, lb = self._gather(local)
        ws = bufs["workspace"]
        A = net.forward(xb, ws, run.dropout_rng)
        hits = 0 if lb is None else _count_hits(A, lb, bufs)
        value = net.backward(xb, yb, run.loss, ws, wb, dropped=run.dropout_rng is not None,
                             count=count)
        if run.shards is not None:
            value, hits = run.shards.reduce_metrics(value, hits)
        value += run.finish_gradient(count)
        return value, hits

    def run_epoch(self, order: np.ndarray | None, on_batch: BatchEnd | None = None
                  ) -> tuple[float, int, int]:
        """One pass over the data in ``order`` (None: in order): (the sum of the batch losses,
        each times its rows unless the loss is a sum; hits; the first step whose loss was not
        finite, or -1)."""
        run = self.run
        total, hits, bad = 0.0, 0, -1
        per_sample = run.loss.scale_form()[0]
        for step, start in enumerate(range(0, run.n, run.batch_size)):
            stop = min(start + run.batch_size, run.n)
            value, batch_hits = self.step(
                slice(start, stop) if order is None else order[start:stop])
            if not math.isfinite(value) and bad < 0:
                bad = step
                if run.halt:
                    break
            hits += batch_hits
            total += value * (stop - start) if per_sample else value
            if on_batch is not None:
                on_batch(step, value)
        return total, hits, bad


def choose(accelerate, run: Run):
    """The engine for ``run``: the compiled one when ``accelerate`` asks for it ("auto" or
    True) and it can run the description, else the NumPy engine, whose ``reason`` says why
    (``accelerate=True`` raises a ValueError with that reason instead)."""
    accelerated.check_accelerate(accelerate)
    if accelerate is False:
        return NumpyEngine(run, "accelerate=False")
    reason = accelerated.unsupported_reason(run)
    if reason is None:
        return accelerated.CompiledEngine(run)
    if accelerate is True:
        raise ValueError(f"accelerate=True, but the compiled epochs cannot run: {reason}")
    return NumpyEngine(run, reason)


def _count_hits(A: np.ndarray, labels: np.ndarray, bufs: dict) -> int:
    predicted, hits = bufs["predicted"][: A.shape[0]], bufs["hits"][: A.shape[0]]
    if A.shape[1] == 1:
        np.greater(A[:, 0], 0.5, out=hits)
        np.equal(hits, labels, out=hits)
    else:
        np.argmax(A, axis=1, out=predicted)
        np.equal(predicted, labels, out=hits)
    return int(np.count_nonzero(hits))
