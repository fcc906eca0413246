"""scikit-learn's stochastic solvers ('sgd', 'adam') on matrixprop's training loop.

The epochs are :func:`matrixprop.training.train`'s, over a :class:`~matrixprop.training.Trainer`
with scikit-learn's objective (its L2 term over each batch's count); what is scikit-learn's own
is a callback of that loop (:class:`Convergence`): mini-batches drawn as scikit-learn draws them
(the same random state, the same shuffles), its convergence rule (``tol``,
``n_iter_no_change``), its ``"invscaling"`` and ``"adaptive"`` learning rates, and its early
stopping on a held-out validation score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..callbacks import Callback
from ..training import Trainer, train
from ._optimizers import make_optimizer

__all__ = ["StochasticSolver"]


def _batch_size(batch_size, n: int) -> int:
    if batch_size == "auto":
        return min(200, n)
    if batch_size > n:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped", stacklevel=6)
    return min(int(batch_size), n)


class Convergence(Callback):
    """scikit-learn's end of an epoch: its count of epochs without improvement (on the
    training loss, or on the validation score with early stopping, keeping the best weights),
    its learning-rate rules, and its verbose lines. Runs first among the fit's callbacks, so
    theirs see the validation entries it adds to the logs."""

    def __init__(self, solver: StochasticSolver, validation):
        self.solver, self.validation = solver, validation

    def validate(self) -> dict:
        """The validation entries of an epoch's logs (none without early stopping)."""
        if self.validation is None:
            return {}
        solver, est = self.solver, self.solver.est
        X_val, Y_val, w_val, y_val = self.validation
        outputs = np.empty((X_val.shape[0], est.network_.n_outputs), est.network_.dtype)
        val_loss = est.network_.loss(X_val, Y_val, solver.loss, w_val, outputs=outputs)
        return {"val_loss": val_loss, "val_score": solver.score_outputs(outputs, y_val, w_val)}

    def on_epoch_end(self, state):
        solver, est = self.solver, self.solver.est
        est.n_iter_ += 1
        est.loss_ = state.logs["loss"]
        est.t_ += state.n_samples
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        self._track_progress(state.logs)
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            # learning_rate_init / (t_ + 1) ** power_t, t_ the samples seen
            solver.optimizer.set_lr_scale(1.0 / (est.t_ + 1) ** est.power_t)
        if solver.no_improvement_count > est.n_iter_no_change:
            if self._stop_or_slow_down():
                state.stop_training = True
            solver.no_improvement_count = 0

    def _track_progress(self, logs: dict) -> None:
        solver, est = self.solver, self.solver.est
        if self.validation is None:
            last = est.loss_curve_[-1]
            solver.no_improvement_count = (solver.no_improvement_count + 1
                                           if last > est.best_loss_ - est.tol else 0)
            est.best_loss_ = min(est.best_loss_, last)
            return
        score = logs["val_score"]
        est.validation_scores_.append(score)
        est.validation_loss_curve_.append(logs["val_loss"])
        if est.verbose:
            print(f"Validation score: {score:f}")
        solver.no_improvement_count = (solver.no_improvement_count + 1
                                       if score < est.best_validation_score_ + est.tol else 0)
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            np.copyto(solver.best_params, est.network_.params)

    def _stop_or_slow_down(self) -> bool:
        """After ``n_iter_no_change`` epochs without progress: stop, or (``"adaptive"``) divide
        the rate by 5 until it falls to 1e-6."""
        est, optimizer = self.solver.est, self.solver.optimizer
        what = "Validation score" if self.validation is not None else "Training loss"
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


class StochasticSolver:
    """The stochastic solver of one estimator, with what it keeps between its fits: the
    optimizer, the epochs without improvement, the best weights seen on validation data.

    Parameters
    ----------
    est : BaseMLP
        The estimator, whose hyper-parameters it reads and fitted attributes it writes.
    loss : matrixprop Loss
        The data loss.
    score_outputs : callable
        ``score_outputs(outputs, y, sample_weight)``: the validation score of network outputs.
    validation_targets : callable
        The ``y`` that ``score_outputs`` compares with, from 2-D targets.
    stratified : bool
        Whether the validation split is stratified by the targets.
    """

    def __init__(self, est, loss, score_outputs: Callable, validation_targets: Callable,
                 stratified: bool):
        self.est, self.loss = est, loss
        self.score_outputs, self.validation_targets = score_outputs, validation_targets
        self.stratified = stratified
        self.optimizer = None
        self.no_improvement_count = 0
        self.best_params = est.network_.params.copy()

    def _split(self, X, Y, w, rs):
        """``(train, validation)``; validation is None without early stopping."""
        est = self.est
        if not est.early_stopping:
            return (X, Y, w), None
        parts = train_test_split(*((X, Y) if w is None else (X, Y, w)), random_state=rs,
                                 test_size=est.validation_fraction,
                                 stratify=Y if self.stratified else None)
        X_train, X_val, Y_train, Y_val = parts[:4]
        w_train, w_val = parts[4:] if w is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        return (X_train, Y_train, w_train), (X_val, Y_val, w_val,
                                             self.validation_targets(Y_val))

    def fit(self, X, Y, sample_weight, rs, incremental: bool) -> None:
        """Train ``est.network_`` for up to ``est.max_iter`` epochs (one with ``incremental``)."""
        est = self.est
        if est.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        net = est.network_
        if not incremental or self.optimizer is None:
            self.optimizer = make_optimizer(est)
            self.optimizer.setup(net)
        (X, Y, sample_weight), validation = self._split(X, Y, sample_weight, rs)
        order = np.arange(X.shape[0])

        def shuffled(epoch: int) -> np.ndarray | None:
            if not est.shuffle:
                return None
            rs.shuffle(order)  # the draws of sklearn.utils.shuffle
            return order

        trainer = Trainer(net, X, Y, loss=self.loss, optimizer=self.optimizer,
                          batch_size=_batch_size(est.batch_size, X.shape[0]),
                          l2=est.alpha, l2_per_batch=True, sample_weight=sample_weight,
                          accelerate=est.accelerate, order=shuffled, halt=False)
        if est.verbose:
            reason = trainer.engine.reason
            print(f"Engine: {trainer.engine.name}" + (f" ({reason})" if reason else ""))
        epochs = 1 if incremental else est.max_iter
        convergence = Convergence(self, validation)
        est.n_iter_ = 0
        try:
            history = train(trainer, epochs=epochs, callbacks=[convergence, *(est.callbacks or ())],
                            evaluate=convergence.validate)
            if not incremental and not history.stopped and est.n_iter_ == est.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=4)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if validation is not None:
            net.params[...] = self.best_params
