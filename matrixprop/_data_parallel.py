"""One rank's training loop in data-parallel training (see :mod:`matrixprop.distributed`).

Every rank holds the whole training set and the same weights, and draws the same global batch
order from the shared seed. Of each global batch of ``B`` rows, rank ``r`` of ``P`` takes the
contiguous rows ``[r B // P, (r + 1) B // P)`` (none when ``B < P`` leaves it without a row).
Its loss is normalized by the GLOBAL batch's count (its size, or its sum of sample weights), so
the rank's gradient is its exact share of the global batch's gradient, and their sum over the
ranks, one all-reduce, is that gradient. L2, gradient hooks, clipping and the optimizer step
then act on the same numbers everywhere.
"""

from __future__ import annotations

import copy

import numpy as np

from . import _validation as check
from .distributed import Communicator
from .network import Network
from .training import Trainer, class_labels

__all__ = ["DataParallelTrainer"]


class DataParallelTrainer(Trainer):
    """A :class:`~matrixprop.training.Trainer` for one rank of ``comm``.

    On creation, rank 0's weights and shuffling seed are broadcast, and the training-set size
    and batch size are checked to agree across ranks. Each step all-reduces the gradient (in
    place, in :meth:`finish_gradient`) and then the batch loss and hit count (a second, two-number
    all-reduce), so the epoch metrics are those of the whole training set on every rank.
    Validation is sharded the same way and reduced. With dropout each rank draws its masks from
    its own stream, so results match a single process in distribution, not bit for bit.
    """

    def __init__(self, comm: Communicator, net: Network, X, Y, **options):
        super().__init__(net, X, Y, **options)
        self.comm = comm
        comm.broadcast(net.params)  # rank 0's initial weights everywhere
        seed, n, batch_size = comm.broadcast_object((self.seed, self.n, self.batch_size))
        if (n, batch_size) != (self.n, self.batch_size):
            raise ValueError(
                f"rank {comm.rank} has {self.n} training samples in batches of "
                f"{self.batch_size}, rank 0 has {n} in batches of {batch_size}: every rank "
                "must pass the same training set and batch_size")
        self.seed = seed
        self.global_count = 1.0  # the count the loss normalizes by: see _global_batch_loss
        self.loss = _global_batch_loss(self.loss, self)
        self._metrics = np.zeros(2)
        self._weights = None if self.w is None else np.empty_like(self.w)
        if self.dropout_rng is not None:  # independent masks on every rank
            self.dropout_rng = np.random.default_rng([comm.rank, int(net.rng.integers(2**63))])

    def _shard(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` rows."""
        rank, size = self.comm.rank, self.comm.size
        return slice(rank * n // size, (rank + 1) * n // size)

    def train_step(self, rows) -> tuple[float, int]:
        """One update from the global batch ``rows``; returns its loss and hit count."""
        if isinstance(rows, slice):
            b = rows.stop - rows.start
            part = self._shard(b)
            local = slice(rows.start + part.start, rows.start + part.stop)
            weights = None if self.w is None else self.w[rows]
        else:
            b = rows.shape[0]
            local = rows[self._shard(b)]
            weights = None if self.w is None else np.take(self.w, rows, out=self._weights[:b],
                                                          mode="clip")
        self.global_count = b if weights is None else float(np.sum(weights))
        self._metrics[:] = super().train_step(local)
        self.comm.allreduce(self._metrics)
        return float(self._metrics[0]), int(self._metrics[1])

    def finish_gradient(self) -> None:
        """Sum the ranks' gradients, then L2, hooks and clipping as in a single process."""
        self.comm.allreduce(self.net.grads)
        super().finish_gradient()

    def evaluate(self, X, Y) -> dict:
        """Loss and accuracy on validation data, each rank evaluating its shard."""
        net = self.net
        X = check.inputs(X, net.n_inputs, net.dtype, name="validation X")
        Y = check.targets(Y, X.shape[0], net.n_outputs, self.loss, net.dtype)
        part = self._shard(X.shape[0])
        self._metrics[:] = 0.0
        if part.stop > part.start:
            self.global_count = X.shape[0]
            A = net.predict(X[part])
            self._metrics[:] = self.loss(A, Y[part]), np.count_nonzero(
                class_labels(A) == class_labels(Y[part]))
        self.comm.allreduce(self._metrics)
        logs = {"val_loss": float(self._metrics[0])}
        if self.classify:
            logs["val_accuracy"] = float(self._metrics[1]) / X.shape[0]
        return logs


def _global_batch_loss(loss, trainer: DataParallelTrainer):
    """A copy of ``loss`` whose reduction constant is that of ``trainer.global_count`` samples
    (the global batch) instead of the rows it is given (the rank's shard)."""
    shard_loss = copy.copy(loss)
    shard_loss.scale = lambda n_samples, n_outputs: loss.scale(trainer.global_count, n_outputs)
    return shard_loss
