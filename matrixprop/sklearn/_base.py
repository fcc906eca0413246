"""What the classifier and the regressor share: hyper-parameters, fitting, the fitted network.

The fitted model is a matrixprop :class:`~matrixprop.Network` (``network_``). scikit-learn's
``coefs_[i]`` (fan_in, fan_out) is the transpose of layer ``i``'s ``W`` (fan_out, fan_in), and
``intercepts_[i]`` its ``b``: both are views of the network's parameters, not copies.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._lbfgs import fit_lbfgs
from ._network import build_network
from ._params import hidden_layer_sizes, validate_params
from ._stochastic import StochasticSolver

__all__ = ["FLOAT_DTYPES", "BaseMLP", "store_params", "stochastic_solver"]

FLOAT_DTYPES = (np.float64, np.float32)


def stochastic_solver(est) -> bool:
    """Whether ``est``'s solver is stochastic, else the AttributeError that hides
    ``partial_fit`` (scikit-learn's ``available_if`` rule)."""
    if est.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{est.solver} is not stochastic.")
    return True


def store_params(est, params: dict) -> None:
    """``__init__``'s body: store every argument unchanged under its own name."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class BaseMLP(BaseEstimator):
    """Base class of :class:`MLPClassifier` and :class:`MLPRegressor` (not for direct use)."""

    # -- hooks of the subclasses -----------------------------------------------------------
    def _validate_input(self, X, y, incremental: bool, reset: bool):
        """Validated ``X``, 2-D targets, and weights to multiply into the sample weights
        (class weights) or None."""
        raise NotImplementedError

    def _output_activation(self):
        """The output activation: a matrixprop name or activation, and scikit-learn's name."""
        raise NotImplementedError

    def _make_loss(self):
        """The data loss, a matrixprop Loss."""
        raise NotImplementedError

    def _score_outputs(self, outputs, y, sample_weight) -> float:
        """The validation score (accuracy, R^2) of network outputs against ``y``."""
        raise NotImplementedError

    def _validation_targets(self, Y):
        """The ``y`` that :meth:`_score_outputs` compares with, from 2-D targets."""
        return Y

    def _stratified_validation(self) -> bool:
        return False

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data. float32 data is trained and predicted in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental: bool):
        validate_params(self)
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, Y, extra = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if extra is not None:
            sample_weight = extra if sample_weight is None else sample_weight * extra
        layer_units = [X.shape[1], *hidden_layer_sizes(self.hidden_layer_sizes), Y.shape[1]]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, X.dtype, rs)
        elif self.network_.sizes != layer_units:
            raise ValueError(f"the network has layer sizes {self.network_.sizes}, but these data "
                             f"and hidden_layer_sizes need {layer_units}: fit without "
                             "warm_start to start afresh")
        net = self.network_
        X = np.ascontiguousarray(X, dtype=net.dtype)
        Y = np.ascontiguousarray(Y, dtype=net.dtype)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=net.dtype)
        if self.solver == "lbfgs":
            fit_lbfgs(self, X, Y, sample_weight, self._loss)
        else:
            if getattr(self, "_solver", None) is None:  # a warm start from another solver
                self._new_solver()
            self._solver.fit(X, Y, sample_weight, rs, incremental)
        if not np.isfinite(net.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        return self

    def _initialize(self, Y, layer_units: list[int], dtype, rs) -> None:
        """Build the network and reset every fitted attribute (the first fit)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        output_activation, self.out_activation_ = self._output_activation()
        self.network_ = build_network(layer_units, self.activation, output_activation,
                                      self.dropout, dtype, rs)
        self._loss = self._make_loss()
        self._loss.check_output(self.network_.output_activation)
        self._solver = None
        if self.solver == "lbfgs":
            return
        self._new_solver()
        self.loss_curve_ = []
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    def _new_solver(self) -> None:
        self._solver = StochasticSolver(self, self._loss, self._score_outputs,
                                        self._validation_targets, self._stratified_validation())

    # -- the fitted model ------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Layer ``i``'s weights as a (fan_in, fan_out) view: ``network_.layers[i].W.T``."""
        return [layer.W.T for layer in self.network_.layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Layer ``i``'s biases: a view of ``network_.layers[i].b``."""
        return [layer.b for layer in self.network_.layers]

    def _forward(self, X) -> np.ndarray:
        """The output layer's activations for validated ``X``, in the network's dtype."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        return self.network_.predict(X)

