"""scikit-learn's ``solver="lbfgs"``: SciPy's L-BFGS-B on the network's flat parameter buffer.

The whole training set is one batch of the training loop's objective
(:meth:`matrixprop.training.Trainer.loss_and_gradient`, with scikit-learn's L2 term);
``net.params`` is the point and ``net.grads`` the gradient that SciPy sees, as float64 vectors.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from ..optimizers import SGD
from ..training import Trainer
from ._callbacks import CallbackRunner

__all__ = ["fit_lbfgs"]


def fit_lbfgs(est, X, Y, sample_weight, loss) -> None:
    """Minimize the objective over the whole training set; sets ``n_iter_`` and ``loss_``."""
    net = est.network_
    if any(layer.dropout for layer in net.layers):
        raise ValueError("dropout needs a stochastic solver ('sgd' or 'adam'): L-BFGS needs a "
                         "loss that does not change between evaluations")
    # L-BFGS takes the steps: the trainer's optimizer (stateless plain SGD) never steps
    trainer = Trainer(net, X, Y, loss=loss, optimizer=SGD(), batch_size=None, shuffle=False,
                      l2=est.alpha, l2_per_batch=True, sample_weight=sample_weight)
    runner = CallbackRunner(est.callbacks, net, None, est.max_iter, 1, X.shape[0])

    def loss_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        net.params[...] = x
        return trainer.loss_and_gradient(), net.grads.astype(np.float64)

    def after_iteration(intermediate_result) -> None:
        if est.verbose:
            print(f"Iteration {runner.state.epoch + 1}, loss = {intermediate_result.fun:.8f}")
        if runner.epoch_end({"loss": float(intermediate_result.fun)}):
            raise StopIteration
        runner.epoch_begin(runner.state.epoch + 1)

    runner.train_begin()
    runner.epoch_begin(0)
    result = scipy.optimize.minimize(
        loss_and_gradient, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
        callback=after_iteration,
    )
    net.params[...] = result.x
    est.n_iter_ = min(int(result.nit), est.max_iter)
    est.loss_ = float(result.fun)
    if result.status != 0 and not runner.state.stop_training:
        warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status="
                      f"{result.status}): {result.message}. Increase the number of iterations "
                      "(max_iter) or scale the data.", ConvergenceWarning, stacklevel=4)
    runner.train_end()
