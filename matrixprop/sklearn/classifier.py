"""``MLPClassifier``: scikit-learn's multi-layer perceptron classifier on matrixprop."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .. import losses
from ._base import FLOAT_DTYPES, BaseMLP, stochastic_solver, store_params
from ._docs import EXTRA_PARAMETERS, SHARED_ATTRIBUTES, SHARED_PARAMETERS

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = f"""A multi-layer perceptron classifier: scikit-learn's, trained by matrixprop.

    The same parameters, defaults, fitted attributes and results as
    ``sklearn.neural_network.MLPClassifier`` (with the same ``random_state`` it draws the same
    initial weights and batches), plus dropout, per-layer activations, class weights, other
    losses, matrixprop optimizers and callbacks. Multi-class problems get a softmax output and
    the cross-entropy; binary and multi-label problems a logistic output per label and the
    binary cross-entropy summed over labels. float32 data is trained in float32.

    Parameters
    ----------
{SHARED_PARAMETERS}    loss : str or matrixprop Loss, default="log_loss"
        "log_loss" is scikit-learn's; any matrixprop loss (e.g. "mse") may replace it.
    class_weight : dict, list of dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (as
        ``sklearn.utils.class_weight.compute_sample_weight`` computes them).
{EXTRA_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
{SHARED_ATTRIBUTES}
    Notes
    -----
    The reported losses clamp each logarithm at -100 (as PyTorch does) where scikit-learn clips
    probabilities at machine epsilon; they differ only where a probability falls below 1e-16.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from matrixprop.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(30,), max_iter=500, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(
        self,
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
        loss="log_loss",
        dropout=0.0,
        class_weight=None,
        optimizer=None,
        callbacks=None,
        accelerate="auto",
    ):
        store_params(self, locals())

    # -- hooks of BaseMLP ------------------------------------------------------------------
    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=FLOAT_DTYPES, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {classes}")
            if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool), self._class_weights(y,
                                                                                      incremental)

    def _class_weights(self, y, incremental: bool):
        if self.class_weight is None:
            return None
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit: the "
                             "class frequencies of one batch are not those of the data; pass "
                             "a dict of weights")
        return compute_sample_weight(self.class_weight, y)

    def _output_activation(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "softmax"
        return "sigmoid", "logistic"

    def _make_loss(self):
        if isinstance(self.loss, str) and self.loss == "log_loss":
            if self.out_activation_ == "softmax":
                return losses.CrossEntropy()
            return losses.BinaryCrossEntropy(reduction="batchmean")  # summed over labels
        return losses.get(self.loss)

    def _labels(self, outputs: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(
            outputs.ravel() if self.n_outputs_ == 1 else outputs)

    def _score_outputs(self, outputs, y, sample_weight):
        if not np.isfinite(outputs).all():
            return np.nan
        return accuracy_score(y, self._labels(outputs), sample_weight=sample_weight)

    def _validation_targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _stratified_validation(self):
        return self.n_outputs_ == 1

    # -- public API ------------------------------------------------------------------------
    @available_if(stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array-like of shape (n_classes,), default=None
            All the classes over all calls; required on the first call, optional after.

        Returns
        -------
        self : object
            The trained model.
        """
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel")
                                      else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """The predicted classes (label rows for multi-label problems).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        check_is_fitted(self)
        return self._labels(self._forward(X))

    def predict_proba(self, X):
        """The probability of each class, in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        outputs = self._forward(X)
        if self.n_outputs_ == 1:
            p = outputs[:, 0]
            return np.stack([1 - p, p], axis=1)
        return outputs

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
