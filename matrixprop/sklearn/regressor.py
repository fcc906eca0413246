"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor on matrixprop."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .. import losses
from ._base import FLOAT_DTYPES, BaseMLP, stochastic_solver, store_params
from ._docs import EXTRA_PARAMETERS, SHARED_ATTRIBUTES, SHARED_PARAMETERS
from ._poisson import Exp, HalfPoissonDeviance

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = f"""A multi-layer perceptron regressor: scikit-learn's, trained by matrixprop.

    The same parameters, defaults, fitted attributes and results as
    ``sklearn.neural_network.MLPRegressor`` (with the same ``random_state`` it draws the same
    initial weights and batches), plus dropout, per-layer activations, other losses,
    matrixprop optimizers and callbacks. float32 data is trained in float32.

    Parameters
    ----------
    loss : str or matrixprop Loss, default="squared_error"
        "squared_error": half the squared error, summed over the outputs and averaged over
        the samples, after an identity output; "poisson": half the Poisson deviance after an
        exponential output (``y >= 0``). Any matrixprop loss ("mse", "half_sse", ...) follows
        an identity output.
{SHARED_PARAMETERS}{EXTRA_PARAMETERS}
    Attributes
    ----------
{SHARED_ATTRIBUTES}
    Notes
    -----
    With several outputs ``loss_`` is the squared error summed over them; scikit-learn reports
    it divided by the number of outputs but trains on the sum's gradient, which we follow.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from matrixprop.sklearn import MLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor(hidden_layer_sizes=(30,), solver="lbfgs", random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        optimizer=None,
        callbacks=None,
        accelerate="auto",
    ):
        store_params(self, locals())

    # -- hooks of BaseMLP ------------------------------------------------------------------
    def _is_poisson(self) -> bool:
        return isinstance(self.loss, str) and self.loss == "poisson"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=FLOAT_DTYPES, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self._is_poisson() and np.any(y < 0):
            raise ValueError("loss='poisson' needs targets y >= 0")
        return X, y.reshape(-1, 1) if y.ndim == 1 else y, None

    def _output_activation(self):
        return (Exp(), "exp") if self._is_poisson() else ("identity", "identity")

    def _make_loss(self):
        if self._is_poisson():
            return HalfPoissonDeviance(reduction="batchmean")
        if isinstance(self.loss, str) and self.loss == "squared_error":
            return losses.HalfSSE(reduction="batchmean")  # scikit-learn's half squared error
        return losses.get(self.loss)

    def _score_outputs(self, outputs, y, sample_weight):
        if not np.isfinite(outputs).all():
            return np.nan
        return r2_score(y, outputs, sample_weight=sample_weight)

    # -- public API ------------------------------------------------------------------------
    @available_if(stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """The predicted values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        outputs = self._forward(X)
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self._is_poisson()
        return tags
