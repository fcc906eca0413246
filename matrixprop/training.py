"""Training: the one loop over epochs, with validation, callbacks and the history of a run.

``batch_size=1`` is stochastic gradient descent, ``batch_size=None`` (or the data size) batch
gradient descent, anything between mini-batch gradient descent.

A :class:`Trainer` validates a training's data and settings, describes it for the engines
(:class:`matrixprop.engines.Run`) and asks one of them to run its epochs; :func:`train` is the
loop around it (schedules, callbacks, validation, the history). :func:`fit`, the scikit-learn
estimators, the playground and data-parallel training all run through these two. Each step runs
forward, backward, then :meth:`matrixprop.engines.Run.finish_gradient` -- the ONE place where a
batch's gradient is complete, where the data-parallel all-reduce, L2 regularization, gradient
hooks and clipping act -- and then the optimizer's update.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from . import _validation as check
from . import distributed as distributed_module
from . import engines
from . import losses as losses_module
from . import optimizers as optimizers_module
from . import schedules as schedules_module
from .callbacks import Callback, EarlyStopping, TrainingState
from .network import Network, default_loss

__all__ = ["fit", "train", "History", "Trainer"]


class History:
    """Per-epoch metrics of a run: ``history["loss"]``, ``history["val_accuracy"]``...

    Keys: ``loss`` (the data loss, without the L2 term), ``accuracy`` (classification: the
    running accuracy of the training batches), ``val_loss``, ``val_accuracy`` (with validation
    data), ``lr``, ``epoch_seconds``, ``samples_per_second``. The loss is the exact one, taken
    from the output layer's logits for the cross-entropies (as PyTorch's losses on logits), on
    either engine; with scikit-learn's per-batch L2 it includes the L2 term.

    Attributes besides the metrics: ``engine`` ("numpy" or "compiled", the engine that ran the
    epochs), ``engine_reason`` (why not the compiled one, when it did not run), ``stopped``
    (whether a callback asked the training to stop), ``best_epoch`` (set by early stopping).
    """

    def __init__(self, engine: str | None = None, engine_reason: str | None = None):
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.best_epoch: int | None = None
        self.engine = engine  # "numpy" or "compiled": the engine that ran the epochs
        self.engine_reason = engine_reason  # why not the compiled one, when it did not run
        self.stopped = False  # whether a callback asked the training to stop

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
    """One training's validated data and settings, its described run and the engine that runs
    it (see :func:`fit` for the arguments).

    ``l2_per_batch``: scikit-learn's L2, ``l2 / count`` per batch with its term in the loss,
    instead of the book's ``l2 / n``. ``order``: the sample order of each epoch, a callable of
    the epoch number (default: drawn from ``seed`` and the epoch, or none without ``shuffle``).
    ``comm``: a communicator of several ranks makes the training data-parallel. ``halt``:
    whether an epoch stops at its first non-finite loss (it then raises FloatingPointError).
    """

    def __init__(self, net: Network, X, Y, *, loss=None, optimizer=None, batch_size=32,
                 shuffle=True, seed=None, l2=0.0, l2_per_batch=False, sample_weight=None,
                 gradient_hooks=None, clip_grad_norm=None, accelerate=False, order=None,
                 comm: distributed_module.Communicator | None = None, halt=True):
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
        self.order = order
        self.optimizer = optimizers_module.get(optimizer if optimizer is not None else "adam")
        self.optimizer.setup(net)
        l2 = check.non_negative(l2, "l2")
        clip = None if clip_grad_norm is None else check.non_negative(
            clip_grad_norm, "clip_grad_norm")
        self.classify = is_classifier(net)
        self.labels = class_labels(self.Y) if self.classify else None
        self.comm = comm if comm is not None else distributed_module.Communicator()
        shards = None
        if self.comm.size > 1:
            shards = distributed_module.Shards(self.comm)
            self.seed = shards.agree(net, self.seed, self.n, self.batch_size)
        dropout = any(layer.dropout for layer in net.layers)
        self.run = engines.Run(
            net, self.loss, self.optimizer, self.X, self.Y, self.w, self.labels,
            self.batch_size, l2=l2 if l2_per_batch else l2 / self.n, l2_per_batch=l2_per_batch,
            clip=clip, gradient_hooks=list(gradient_hooks or ()),
            dropout_rng=(shards.dropout_rng(net) if shards else net.rng) if dropout else None,
            shards=shards, halt=halt)
        self.engine = engines.choose(accelerate, self.run)
        self._reference = None

    @property
    def steps_per_epoch(self) -> int:
        return self.run.steps_per_epoch

    def epoch_order(self, epoch: int) -> np.ndarray | None:
        """The sample order of ``epoch`` (None: in order). By default it depends only on the
        seed and the epoch, so a resumed run sees the same batches as an uninterrupted one."""
        if self.order is not None:
            return self.order(epoch)
        if not self.shuffle:
            return None
        return np.random.default_rng([epoch, self.seed]).permutation(self.n)

    def _numpy_engine(self) -> engines.NumpyEngine:
        if self._reference is None:
            self._reference = (self.engine if isinstance(self.engine, engines.NumpyEngine)
                               else engines.NumpyEngine(self.run))
        return self._reference

    def train_step(self, rows) -> tuple[float, int]:
        """One update from the samples ``rows`` on the NumPy engine, the reference (see
        :meth:`matrixprop.engines.NumpyEngine.step`), whichever engine runs the epochs."""
        return self._numpy_engine().step(rows)

    def loss_and_gradient(self) -> float:
        """The loss of the whole training set, its complete gradient left in ``net.grads``
        and no update: the objective of full-batch optimizers such as L-BFGS (the network
        should then have no dropout, whose masks change between calls)."""
        with np.errstate(over="ignore"):
            return self._numpy_engine().loss_and_gradient(slice(0, self.n))[0]

    def run_epoch(self, state: TrainingState, batch_callbacks: Sequence[Callback]) -> dict:
        """One pass over the training data; returns the epoch's training metrics."""
        on_batch = None
        if batch_callbacks:
            def on_batch(step: int, value: float) -> None:
                state.step, state.batch_loss = step, value
                for callback in batch_callbacks:
                    callback.on_batch_end(state)

        order = self.epoch_order(state.epoch)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            total_loss, hits, bad_step = self.engine.run_epoch(order, on_batch)
        if bad_step >= 0 and self.run.halt:
            raise FloatingPointError(
                f"the training loss became non-finite in epoch {state.epoch + 1}, step "
                f"{bad_step + 1}: lower the learning rate or clip the gradients (clip_grad_norm)"
            )
        per_sample = self.loss.scale_form()[0]
        logs = {"loss": total_loss / self.n if per_sample else total_loss}
        if self.classify:
            logs["accuracy"] = hits / self.n
        return logs

    def evaluate(self, X, Y) -> dict:
        """Loss and (for classifiers) accuracy of the network on validation data (in
        data-parallel training, each rank evaluates its shard and the ranks sum)."""
        net = self.net
        X = check.inputs(X, net.n_inputs, net.dtype, name="validation X")
        Y = check.targets(Y, X.shape[0], net.n_outputs, self.loss, net.dtype)
        part = slice(0, X.shape[0]) if self.run.shards is None else self.run.shards.rows(
            X.shape[0])
        value, hits = 0.0, 0
        if part.stop > part.start:
            outputs = np.empty((part.stop - part.start, net.n_outputs), net.dtype)
            value = net.loss(X[part], Y[part], self.loss, count=X.shape[0], outputs=outputs)
            if self.classify:
                hits = int(np.count_nonzero(class_labels(outputs) == class_labels(Y[part])))
        if self.run.shards is not None:
            value, hits = self.run.shards.reduce_metrics(value, hits)
        logs = {"val_loss": value}
        if self.classify:
            logs["val_accuracy"] = hits / X.shape[0]
        return logs


def train(trainer: Trainer, *, epochs: int, initial_epoch: int = 0, validation_data=None,
          callbacks: Sequence[Callback] = (), schedule=None,
          evaluate: Callable[[], dict] | None = None) -> History:
    """The training loop: epochs ``initial_epoch`` to ``epochs - 1`` of ``trainer``, each after
    its schedule's step and between its callbacks' hooks, validated on ``validation_data``
    (an ``(X, Y)`` pair, checked by the caller) or by ``evaluate()``, which returns the
    validation entries of the epoch's logs; returns the :class:`History`."""
    if evaluate is None and validation_data is not None:
        def evaluate() -> dict:
            return trainer.evaluate(*validation_data)

    engine = trainer.engine
    history = History(engine.name, engine.reason)
    state = TrainingState(trainer.net, trainer.optimizer, epochs, trainer.steps_per_epoch,
                          trainer.n, history)
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
        if evaluate is not None:
            logs.update(evaluate())
        logs["lr"] = _scalar_lr(trainer.optimizer)
        logs["epoch_seconds"] = seconds
        logs["samples_per_second"] = trainer.n / seconds if seconds > 0 else math.inf
        history.append(epoch, logs)
        state.logs = logs
        for callback in callbacks:
            callback.on_epoch_end(state)
        if state.stop_training:
            history.stopped = True
            break
    for callback in callbacks:
        callback.on_train_end(state)
    return history


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
        allows it (:mod:`matrixprop.accelerated`); False forces the NumPy engine, True raises
        a ValueError naming what stands in the way. ``History.engine`` says which ran, and
        ``History.engine_reason`` why not the compiled one.
    """
    epochs = check.positive_int(epochs, "epochs")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, int) or not (
            0 <= initial_epoch < epochs):
        raise ValueError(f"initial_epoch must be an integer in [0, epochs), got {initial_epoch!r}")
    comm = distributed_module.get_communicator(distributed)
    trainer = Trainer(net, X, Y, loss=loss, optimizer=optimizer, batch_size=batch_size,
                      shuffle=shuffle, seed=seed, l2=l2, sample_weight=sample_weight,
                      gradient_hooks=gradient_hooks, clip_grad_norm=clip_grad_norm,
                      accelerate=accelerate, comm=comm)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, Y_val)")
        trainer.evaluate(*validation_data)  # fail before training on bad validation data
    schedule = None if schedule is None else schedules_module.get(schedule)
    callbacks = [c for c in callbacks or () if comm.rank == 0 or not c.root_only]
    if early_stopping:
        callbacks.append(EarlyStopping(patience=check.positive_int(patience, "patience")))
    return train(trainer, epochs=epochs, initial_epoch=initial_epoch,
                 validation_data=validation_data, callbacks=callbacks, schedule=schedule)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of rows whose predicted class equals ``labels``."""
    return float(np.mean(class_labels(outputs) == labels))


def is_classifier(net: Network) -> bool:
    """Whether accuracy is meaningful: probability-like outputs (softmax, sigmoid)."""
    return net.output_activation.name in ("softmax", "sigmoid")


def class_labels(Y: np.ndarray) -> np.ndarray:
    """Class labels of targets: the argmax of each row, or (one output) whether y > 0.5."""
    return Y[:, 0] > 0.5 if Y.shape[1] == 1 else np.argmax(Y, axis=1)


def _scalar_lr(optimizer) -> float:
    lr = optimizer.current_lr
    return float(lr) if np.ndim(lr) == 0 else float(np.max(lr))
