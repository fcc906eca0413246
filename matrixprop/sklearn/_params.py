"""Checks of the estimators' hyper-parameters, run at the start of ``fit`` (scikit-learn's
convention: ``__init__`` stores, ``fit`` validates), with scikit-learn's ranges."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from .. import _validation as check
from ..accelerated import check_accelerate
from ..callbacks import Callback
from ..optimizers import Optimizer

__all__ = ["validate_params", "hidden_layer_sizes"]

_SOLVERS = ("lbfgs", "sgd", "adam")
_SCHEDULES = ("constant", "invscaling", "adaptive")


def hidden_layer_sizes(value) -> list[int]:
    """The hidden widths as a list: an int is one hidden layer."""
    sizes = list(value) if isinstance(value, Iterable) else [value]
    for size in sizes:
        check.positive_int(size, "hidden_layer_sizes")
    return [int(size) for size in sizes]


def _choice(value, options, name: str) -> None:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")


def _positive(value, name: str) -> None:
    if check.non_negative(value, name) == 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _unit_interval(value, name: str, *, closed: bool) -> None:
    if check.non_negative(value, name) > 1 or (not closed and value == 1):
        raise ValueError(f"{name} must be in [0, 1{']' if closed else ')'}, got {value}")


def validate_params(est) -> None:
    """Raise ValueError or TypeError for any hyper-parameter outside scikit-learn's range."""
    hidden_layer_sizes(est.hidden_layer_sizes)
    _choice(est.solver, _SOLVERS, "solver")
    _choice(est.learning_rate, _SCHEDULES, "learning_rate")
    check.non_negative(est.alpha, "alpha")
    if est.batch_size != "auto":
        check.positive_int(est.batch_size, "batch_size")
    _positive(est.learning_rate_init, "learning_rate_init")
    check.non_negative(est.power_t, "power_t")
    check.positive_int(est.max_iter, "max_iter")
    check.non_negative(est.tol, "tol")
    _unit_interval(est.momentum, "momentum", closed=True)
    _unit_interval(est.validation_fraction, "validation_fraction", closed=False)
    _unit_interval(est.beta_1, "beta_1", closed=False)
    _unit_interval(est.beta_2, "beta_2", closed=False)
    _positive(est.epsilon, "epsilon")
    if not (isinstance(est.n_iter_no_change, numbers.Real) and est.n_iter_no_change == math.inf):
        check.positive_int(est.n_iter_no_change, "n_iter_no_change")
    check.positive_int(est.max_fun, "max_fun")
    if est.optimizer is not None:
        if not isinstance(est.optimizer, Optimizer):
            raise TypeError("optimizer must be a matrixprop optimizer (mp.optimizers.Adam(...)),"
                            f" got {type(est.optimizer).__name__}")
        if est.solver == "lbfgs":
            raise ValueError("optimizer is used by the stochastic solvers: set solver='sgd' or "
                             "'adam', or leave optimizer=None with solver='lbfgs'")
    check_accelerate(est.accelerate)
    if est.callbacks is not None and not all(isinstance(c, Callback) for c in est.callbacks):
        raise TypeError("callbacks must be a list of matrixprop Callback objects")
