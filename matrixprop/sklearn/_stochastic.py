"""scikit-learn's stochastic solvers ('sgd', 'adam') on a matrixprop network.

Epochs of mini-batches drawn as scikit-learn draws them (the same random state, the same
shuffles), its convergence rule (``tol``, ``n_iter_no_change``), its ``"invscaling"`` and
``"adaptive"`` learning rates, and its early stopping on a held-out validation score.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..accelerated import compiled_epochs
from ._callbacks import CallbackRunner
from ._objective import Objective
from ._optimizers import make_optimizer

__all__ = ["fit_stochastic"]


class _Batches:
    """Mini-batches of ``(X, Y, w)`` in a given sample order, gathered into reused buffers."""

    def __init__(self, X, Y, w, batch_size: int):
        self.X, self.Y, self.w, self.size = X, Y, w, batch_size
        self.n = X.shape[0]
        self.steps = math.ceil(self.n / batch_size)
        self._buffers: dict[int, tuple] = {}

    def _buffer(self, b: int) -> tuple:
        if b not in self._buffers:
            self._buffers[b] = (np.empty((b, self.X.shape[1]), self.X.dtype),
                                np.empty((b, self.Y.shape[1]), self.Y.dtype),
                                None if self.w is None else np.empty(b, self.w.dtype))
        return self._buffers[b]

    def __call__(self, order: np.ndarray | None):
        X, Y, w = self.X, self.Y, self.w
        for start in range(0, self.n, self.size):
            stop = min(start + self.size, self.n)
            if order is None:
                yield X[start:stop], Y[start:stop], None if w is None else w[start:stop]
                continue
            idx = order[start:stop]
            xb, yb, wb = self._buffer(stop - start)
            yield (np.take(X, idx, axis=0, out=xb), np.take(Y, idx, axis=0, out=yb),
                   None if w is None else np.take(w, idx, out=wb))


def _batch_size(batch_size, n: int) -> int:
    if batch_size == "auto":
        return min(200, n)
    if batch_size > n:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped", stacklevel=5)
    return min(int(batch_size), n)


def _split(est, X, Y, w, rs):
    """``(train, validation)``; validation is None without early stopping."""
    if not est.early_stopping:
        return (X, Y, w), None
    stratify = Y if est._stratified_validation() else None
    parts = train_test_split(*((X, Y) if w is None else (X, Y, w)), random_state=rs,
                             test_size=est.validation_fraction, stratify=stratify)
    X_train, X_val, Y_train, Y_val = parts[:4]
    w_train, w_val = parts[4:] if w is not None else (None, None)
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' or "
                         "the size of your dataset.")
    return (X_train, Y_train, w_train), (X_val, Y_val, w_val, est._validation_targets(Y_val))


def _track_progress(est, validation, loss, logs: dict) -> None:
    """scikit-learn's count of epochs without improvement, and the best weights so far."""
    if validation is None:
        last = est.loss_curve_[-1]
        est._no_improvement_count = (est._no_improvement_count + 1
                                     if last > est.best_loss_ - est.tol else 0)
        est.best_loss_ = min(est.best_loss_, last)
        return
    X_val, Y_val, w_val, y_val = validation
    outputs = est.network_.predict(X_val)
    score = est._score_outputs(outputs, y_val, w_val)
    est.validation_scores_.append(score)
    est.validation_loss_curve_.append(loss(outputs, Y_val, w_val))
    logs.update(val_loss=est.validation_loss_curve_[-1], val_score=score)
    if est.verbose:
        print(f"Validation score: {score:f}")
    est._no_improvement_count = (est._no_improvement_count + 1
                                 if score < est.best_validation_score_ + est.tol else 0)
    if score > est.best_validation_score_:
        est.best_validation_score_ = score
        np.copyto(est._best_params, est.network_.params)


def _end_of_epoch_rate(est, optimizer) -> None:
    """``"invscaling"``: ``learning_rate_init / (t_ + 1) ** power_t``, t_ the samples seen."""
    if est.solver == "sgd" and est.learning_rate == "invscaling":
        optimizer.set_lr_scale(1.0 / (est.t_ + 1) ** est.power_t)


def _stop_or_slow_down(est, optimizer, early_stopping: bool) -> bool:
    """After ``n_iter_no_change`` epochs without progress: stop, or (``"adaptive"``) divide
    the rate by 5 until it falls to 1e-6."""
    what = "Validation score" if early_stopping else "Training loss"
    msg = (f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
           "consecutive epochs.")
    if est.solver != "sgd" or est.learning_rate != "adaptive":
        stop = " Stopping."
    elif float(np.max(optimizer.current_lr)) <= 1e-6:
        stop = " Learning rate too small. Stopping."
    else:
        optimizer.set_lr_scale(optimizer.lr_scale / 5.0)
        if est.verbose:
            print(f"{msg} Setting learning rate to {float(np.max(optimizer.current_lr)):f}")
        return False
    if est.verbose:
        print(msg + stop)
    return True


def _numpy_epoch(batches, objective: Objective, optimizer, runner: CallbackRunner) -> float:
    """One epoch in the NumPy engine; returns the sum of the batch losses times their sizes."""
    total = 0.0
    for step, (xb, yb, wb) in enumerate(batches):
        value = objective(xb, yb, wb)
        optimizer.step()
        total += value * xb.shape[0]
        if runner.batch_callbacks:
            runner.batch_end(step, value)
    return total


def fit_stochastic(est, X, Y, sample_weight, rs, incremental: bool) -> None:
    """Train ``est.network_`` for up to ``est.max_iter`` epochs (one with ``incremental``)."""
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    net = est.network_
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = make_optimizer(est)
        est._optimizer.setup(net)
    optimizer = est._optimizer
    (X, Y, sample_weight), validation = _split(est, X, Y, sample_weight, rs)
    n = X.shape[0]
    batches = _Batches(X, Y, sample_weight, _batch_size(est.batch_size, n))
    objective = Objective(net, est._loss, est.alpha)
    runner = CallbackRunner(est.callbacks, net, optimizer, est.max_iter, batches.steps, n)
    obstacle = ("per-batch callbacks" if runner.batch_callbacks else
                "a loss with reduction='sum' (the epoch's loss is a mean of batch means here)"
                if est._loss.reduction == "sum" else None)
    fast = compiled_epochs(est.accelerate, net, est._loss, optimizer, X, Y,
                           sample_weight=sample_weight, obstacle=obstacle)
    order = np.arange(n)
    runner.train_begin()
    est.n_iter_ = 0
    try:
        for _ in range(est.max_iter):
            if est.shuffle:
                rs.shuffle(order)  # the draws of sklearn.utils.shuffle
            runner.epoch_begin(est.n_iter_)
            started = time.perf_counter()
            if fast is not None:  # scikit-learn's objective: L2 over each batch's count
                total = fast.run_epoch(optimizer, order if est.shuffle else None, batches.size,
                                       l2=est.alpha, l2_per_batch=True, halt=False)[0]
            else:
                total = _numpy_epoch(batches(order if est.shuffle else None), objective,
                                     optimizer, runner)
            seconds = time.perf_counter() - started
            est.n_iter_ += 1
            est.loss_ = total / n
            est.t_ += n
            est.loss_curve_.append(est.loss_)
            if est.verbose:
                print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
            logs = {"loss": est.loss_, "lr": float(np.max(optimizer.current_lr)),
                    "epoch_seconds": seconds,
                    "samples_per_second": n / seconds if seconds > 0 else math.inf}
            _track_progress(est, validation, objective.loss, logs)
            _end_of_epoch_rate(est, optimizer)
            stop = runner.epoch_end(logs)
            if est._no_improvement_count > est.n_iter_no_change:
                if _stop_or_slow_down(est, optimizer, validation is not None):
                    break
                est._no_improvement_count = 0
            if stop or incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=4)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
    if validation is not None:
        net.params[...] = est._best_params
    runner.train_end()
