"""Training: mini-batches, epochs, validation, callbacks and the history of a run.

``batch_size=1`` is stochastic gradient descent, ``batch_size=None`` (or the data size) batch
gradient descent, anything between mini-batch gradient descent.

Each step runs forward, backward, then :meth:`Trainer.finish_gradient` -- the ONE place where a
batch's gradient is complete, where L2 regularization, gradient hooks (all-reduce, diagnostics)
and clipping act -- and then the optimizer's update.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from . import _validation as check
from . import distributed as distributed_module
from . import losses as losses_module
from . import optimizers as optimizers_module
from . import schedules as schedules_module
from .callbacks import Callback, EarlyStopping, TrainingState
from .network import Network, default_loss

__all__ = ["fit", "History", "Trainer"]


class History:
    """Per-epoch metrics of a run: ``history["loss"]``, ``history["val_accuracy"]``...

    Keys: ``loss`` (the data loss, without the L2 term), ``accuracy`` (classification: the
    running accuracy of the training batches), ``val_loss``, ``val_accuracy`` (with validation
    data), ``lr``, ``epoch_seconds``, ``samples_per_second``.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.best_epoch: int | None = None

    def append(self, epoch: int, logs: dict) -> None:
        """Record one epoch's metrics; a metric missing in some epochs is NaN there, so every
        list stays aligned with ``epochs``."""
        for key in logs:
            self.history.setdefault(key, [math.nan] * len(self.epochs))
        self.epochs.append(epoch)
        for key, values in self.history.items():
            values.append(logs.get(key, math.nan))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epochs)

    def to_csv(self, path) -> None:
        """Write one row per epoch (``epoch`` counted from 1, then every metric)."""
        keys = list(self.history)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *keys])
            for row, epoch in enumerate(self.epochs):
                writer.writerow([epoch + 1, *(self.history[k][row] for k in keys)])

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items()} if self.epochs else {}
        return f"History(epochs={len(self)}, last={last})"


class Trainer:
    """The state and the inner loop of one :func:`fit` call (see there for the arguments)."""

    def __init__(self, net: Network, X, Y, *, loss, optimizer, batch_size, shuffle, seed,
                 l2, sample_weight, gradient_hooks, clip_grad_norm, accelerate=False):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a matrixprop Network, got {type(net).__name__}")
        self.net = net
        self.loss = losses_module.get(loss if loss is not None else default_loss(net))
        self.loss.check_output(net.output_activation)
        self.X = check.inputs(X, net.n_inputs, net.dtype)
        self.n = self.X.shape[0]
        self.Y = check.targets(Y, self.n, net.n_outputs, self.loss, net.dtype)
        self.w = check.sample_weights(sample_weight, self.n, net.dtype)
        self.batch_size = self.n if batch_size is None else min(
            check.positive_int(batch_size, "batch_size"), self.n)
        self.shuffle = bool(shuffle)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = np.random.SeedSequence().entropy if seed is None else seed
        self.optimizer = optimizers_module.get(optimizer if optimizer is not None else "adam")
        self.optimizer.setup(net)
        self.l2 = check.non_negative(l2, "l2")
        self.clip = None if clip_grad_norm is None else check.non_negative(
            clip_grad_norm, "clip_grad_norm")
        self.hooks = list(gradient_hooks or ())
        self.classify = is_classifier(net)
        self.labels = class_labels(self.Y) if self.classify else None
        self._scratch = np.empty(net.n_weights, dtype=net.dtype) if self.l2 else None
        self._buffers: dict[int, dict] = {}
        self.dropout_rng = net.rng if any(layer.dropout for layer in net.layers) else None
        self.fast = self._compiled_epochs(accelerate)

    def _compiled_epochs(self, accelerate):
        """The compiled epoch runner when ``accelerate`` asks for it and it can run, else None."""
        from . import accelerated

        obstacle = None
        if type(self).train_step is not Trainer.train_step:
            obstacle = "the training step is customized (data-parallel training)"
        elif self.hooks:
            obstacle = "gradient hooks are Python callables"
        return accelerated.compiled_epochs(accelerate, self.net, self.loss, self.optimizer,
                                           self.X, self.Y, sample_weight=self.w,
                                           labels=self.labels, obstacle=obstacle)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray | None:
        """The sample order of ``epoch`` (None: in order). It depends only on the seed and the
        epoch, so a resumed run sees the same batches as an uninterrupted one."""
        if not self.shuffle:
            return None
        return np.random.default_rng([epoch, self.seed]).permutation(self.n)

    def _batch_buffers(self, b: int) -> dict:
        """Reused arrays for a gathered batch of ``b`` rows."""
        bufs = self._buffers.get(b)
        if bufs is None:
            net = self.net
            bufs = self._buffers[b] = {
                "X": np.empty((b, net.n_inputs), net.dtype),
                "Y": np.empty((b, net.n_outputs), net.dtype),
                "w": None if self.w is None else np.empty(b, net.dtype),
                "labels": None if self.labels is None else np.empty(b, self.labels.dtype),
                "predicted": np.empty(b, np.intp),
                "hits": np.empty(b, bool),
                "workspace": net._workspace(b),
            }
        return bufs

    def finish_gradient(self) -> None:
        """The one place where a batch's gradient is complete: L2, hooks, clipping."""
        grads = self.net.grads
        if self.l2:  # the book's lambda/(2n) sum w^2 over weights: gradient (lambda/n) w
            np.multiply(self.net.params[: self.net.n_weights], self.l2 / self.n, out=self._scratch)
            grads[: self.net.n_weights] += self._scratch
        for hook in self.hooks:
            hook(grads)
        if self.clip is not None:
            norm = math.sqrt(float(np.vdot(grads, grads)))
            if norm > self.clip:
                grads *= self.clip / norm

    def train_step(self, rows) -> tuple[float, int]:
        """One update from the samples ``rows`` (a slice, or an index array to gather).

        Returns the batch loss and, for classifiers, how many of its samples the network
        classified right before the update. In steady state this allocates no arrays.
        """
        net = self.net
        if isinstance(rows, slice):
            b = rows.stop - rows.start
            bufs = self._batch_buffers(b)
            xb, yb = self.X[rows], self.Y[rows]
            wb = None if self.w is None else self.w[rows]
            lb = None if self.labels is None else self.labels[rows]
        else:
            b = rows.shape[0]
            bufs = self._batch_buffers(b)
            xb = np.take(self.X, rows, axis=0, out=bufs["X"], mode="clip")  # clip: unbuffered
            yb = np.take(self.Y, rows, axis=0, out=bufs["Y"], mode="clip")
            wb = None if self.w is None else np.take(self.w, rows, out=bufs["w"], mode="clip")
            lb = None if self.labels is None else np.take(self.labels, rows, out=bufs["labels"],
                                                          mode="clip")
        ws = bufs["workspace"]
        A = net._forward(xb, ws, self.dropout_rng)
        hits = 0 if lb is None else _count_hits(A, lb, bufs)
        value = net._backward(xb, yb, self.loss, ws, wb, dropped=self.dropout_rng is not None)
        self.finish_gradient()
        self.optimizer.step()
        return value, hits

    def _run_steps(self, order, state, batch_callbacks) -> tuple[float, int, int]:
        """The NumPy engine's epoch: (loss total, hits, index of the first bad step or -1)."""
        total_loss, hits = 0.0, 0
        for step, start in enumerate(range(0, self.n, self.batch_size)):
            stop = min(start + self.batch_size, self.n)
            rows = slice(start, stop) if order is None else order[start:stop]
            value, batch_hits = self.train_step(rows)
            if not math.isfinite(value):
                return total_loss, hits, step
            hits += batch_hits
            total_loss += value if self.loss.reduction == "sum" else value * (stop - start)
            if batch_callbacks:
                state.step, state.batch_loss = step, value
                for callback in batch_callbacks:
                    callback.on_batch_end(state)
        return total_loss, hits, -1

    def run_epoch(self, state: TrainingState, batch_callbacks: Sequence[Callback]) -> dict:
        """One pass over the training data; returns the epoch's training metrics."""
        order = self.epoch_order(state.epoch)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            if self.fast is not None and not batch_callbacks:
                total_loss, hits, bad_step = self.fast.run_epoch(
                    self.optimizer, order, self.batch_size, l2=self.l2 / self.n, clip=self.clip)
            else:
                total_loss, hits, bad_step = self._run_steps(order, state, batch_callbacks)
        if bad_step >= 0:
            raise FloatingPointError(
                f"the training loss became non-finite in epoch {state.epoch + 1}, step "
                f"{bad_step + 1}: lower the learning rate or clip the gradients (clip_grad_norm)"
            )
        logs = {"loss": total_loss if self.loss.reduction == "sum" else total_loss / self.n}
        if self.classify:
            logs["accuracy"] = hits / self.n
        return logs

    def evaluate(self, X, Y) -> dict:
        """Loss and (for classifiers) accuracy of the network on validation data."""
        net = self.net
        X = check.inputs(X, net.n_inputs, net.dtype, name="validation X")
        Y = check.targets(Y, X.shape[0], net.n_outputs, self.loss, net.dtype)
        A = net.predict(X)
        logs = {"val_loss": self.loss(A, Y)}
        if self.classify:
            logs["val_accuracy"] = accuracy(A, class_labels(Y))
        return logs


@distributed_module.abort_on_failure
def fit(
    net: Network,
    X,
    Y,
    *,
    loss=None,
    optimizer=None,
    batch_size: int | None = 32,
    epochs: int = 10,
    initial_epoch: int = 0,
    shuffle: bool = True,
    seed: int | None = None,
    validation_data: tuple | None = None,
    callbacks: Sequence[Callback] | None = None,
    l2: float = 0.0,
    sample_weight=None,
    early_stopping: bool = False,
    patience: int = 10,
    schedule=None,
    clip_grad_norm: float | None = None,
    gradient_hooks: Sequence[Callable[[np.ndarray], None]] | None = None,
    distributed="auto",
    accelerate="auto",
) -> History:
    """Train ``net`` on ``(X, Y)`` with mini-batch gradient descent; return the :class:`History`.

    Parameters
    ----------
    net : Network
        The network; trained in place.
    X : array (n, n_inputs)
        Training inputs, one sample per row.
    Y : array (n, n_outputs) or (n,)
        Targets; a 1-D array holds class labels when the network has several outputs.
    loss : str or Loss
        Default: ``cross_entropy`` after a softmax output, ``mse`` otherwise.
    optimizer : str or Optimizer
        Default: ``Adam()``. An optimizer object keeps its state across ``fit`` calls.
    batch_size : int or None
        Samples per update: 1 is stochastic, ``None`` the whole set (batch gradient descent).
    epochs : int
        Train until this many epochs have been run in all.
    initial_epoch : int
        Epochs already run (to resume from a checkpoint: the batches of epoch ``e`` depend only
        on ``seed`` and ``e``, so a resumed run matches an uninterrupted one).
    shuffle, seed :
        Reshuffle every epoch, in an order drawn from ``seed`` and the epoch number.
    validation_data : (X_val, Y_val)
        Evaluated after every epoch (``val_loss``, ``val_accuracy``).
    callbacks : list of Callback
        See :mod:`matrixprop.callbacks`.
    l2 : float
        The book's L2 regularization ``lambda/(2n) sum w^2`` over weights (not biases), ``n`` the
        training-set size. Optimizers' ``weight_decay`` is PyTorch's and separate.
    sample_weight : array (n,)
        Per-sample weights of the loss.
    early_stopping, patience :
        Stop when the validation loss (the training loss without validation data) has not
        improved for ``patience`` epochs, and restore the best weights.
    schedule : Schedule or str
        A learning-rate schedule stepped after every epoch (:mod:`matrixprop.schedules`).
    clip_grad_norm : float
        Rescale each batch gradient whose Euclidean norm exceeds this.
    gradient_hooks : list of callables
        Called with the flat gradient buffer once each batch's gradient is complete.
    distributed : "auto", "mpi", "none" or Communicator
        Data-parallel training over the ranks of a communicator (:mod:`matrixprop.distributed`);
        ``"auto"`` uses MPI when the script was launched with several ranks (``mpiexec -n 4``).
        Every rank passes the same arguments; rank 0's weights are broadcast first, each rank
        computes its shard of every global batch, and only rank 0 runs ``root_only`` callbacks.
    accelerate : "auto", True or False
        Run epochs in compiled code when numba is installed (``matrixprop[fast]``) and the run
        allows it (:mod:`matrixprop.accelerated`); False forces the NumPy engine.
    """
    epochs = check.positive_int(epochs, "epochs")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, int) or not (
            0 <= initial_epoch < epochs):
        raise ValueError(f"initial_epoch must be an integer in [0, epochs), got {initial_epoch!r}")
    comm = distributed_module.get_communicator(distributed)
    make_trainer = Trainer if comm.size == 1 else distributed_module.data_parallel_trainer(comm)
    trainer = make_trainer(net, X, Y, loss=loss, optimizer=optimizer, batch_size=batch_size,
                           shuffle=shuffle, seed=seed, l2=l2, sample_weight=sample_weight,
                           gradient_hooks=gradient_hooks, clip_grad_norm=clip_grad_norm,
                           accelerate=accelerate)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, Y_val)")
        trainer.evaluate(*validation_data)  # fail before training on bad validation data
    schedule = None if schedule is None else schedules_module.get(schedule)
    callbacks = [c for c in callbacks or () if comm.rank == 0 or not c.root_only]
    if early_stopping:
        callbacks.append(EarlyStopping(patience=check.positive_int(patience, "patience")))
    history = History()
    state = TrainingState(net, trainer.optimizer, epochs, trainer.steps_per_epoch, trainer.n,
                          history)
    batch_callbacks = [c for c in callbacks if c.wants_batches]
    for callback in callbacks:
        callback.on_train_begin(state)
    for epoch in range(initial_epoch, epochs):
        state.epoch = epoch
        if schedule is not None:
            schedule.apply(trainer.optimizer, epoch)
        for callback in callbacks:
            callback.on_epoch_begin(state)
        started = time.perf_counter()
        logs = trainer.run_epoch(state, batch_callbacks)
        seconds = time.perf_counter() - started
        if validation_data is not None:
            logs.update(trainer.evaluate(*validation_data))
        logs["lr"] = _scalar_lr(trainer.optimizer)
        logs["epoch_seconds"] = seconds
        logs["samples_per_second"] = trainer.n / seconds if seconds > 0 else math.inf
        history.append(epoch, logs)
        state.logs = logs
        for callback in callbacks:
            callback.on_epoch_end(state)
        if state.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end(state)
    return history


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of rows whose predicted class equals ``labels``."""
    return float(np.mean(class_labels(outputs) == labels))


def _count_hits(A: np.ndarray, labels: np.ndarray, bufs: dict) -> int:
    predicted, hits = bufs["predicted"][: A.shape[0]], bufs["hits"][: A.shape[0]]
    if A.shape[1] == 1:
        np.greater(A[:, 0], 0.5, out=hits)
        np.equal(hits, labels, out=hits)
    else:
        np.argmax(A, axis=1, out=predicted)
        np.equal(predicted, labels, out=hits)
    return int(np.count_nonzero(hits))


def is_classifier(net: Network) -> bool:
    """Whether accuracy is meaningful: probability-like outputs (softmax, sigmoid)."""
    return net.output_activation.name in ("softmax", "sigmoid")


def class_labels(Y: np.ndarray) -> np.ndarray:
    """Class labels of targets: the argmax of each row, or (one output) whether y > 0.5."""
    return Y[:, 0] > 0.5 if Y.shape[1] == 1 else np.argmax(Y, axis=1)


def _scalar_lr(optimizer) -> float:
    lr = optimizer.current_lr
    return float(lr) if np.ndim(lr) == 0 else float(np.max(lr))
