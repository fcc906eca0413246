"""Loss functions: their value and the gradient that starts the backward pass.

A loss compares the network's output ``A`` (the article's y-hat, one sample per row) with the
targets ``Y`` of the same shape. Its *terms* are per sample (``half_sse``, ``cross_entropy``) or per
element (``mse``, ``binary_cross_entropy``); the reduction turns them into one number:

* ``"sum"``: the sum of the terms (the article's batch loss);
* ``"mean"``: the sum divided by the number of terms, as PyTorch's losses (the default);
* ``"batchmean"``: the sum divided by the number of samples (the book convention).

``reduction`` therefore only sets the constant ``c`` of ``L = c * sum(terms)``. With per-sample
weights ``w_i`` the sum is ``sum_i w_i term_i`` and the sample count becomes ``sum_i w_i``.

Matched output/loss pairs have the fused delta ``D_L = c (A - Y)``: identity with ``half_sse``,
sigmoid with ``binary_cross_entropy``, softmax with ``cross_entropy``. Every other legal pair goes
through ``f'`` (softmax through its Jacobian).
"""

from __future__ import annotations

import math

import numpy as np

from . import activations
from ._validation import registry_entry

__all__ = [
    "Loss",
    "HalfSSE",
    "MSE",
    "CrossEntropy",
    "BinaryCrossEntropy",
    "get",
    "names",
    "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "batchmean")


class Loss:
    """Base class. Subclasses define the gradient's core ``dL/dA`` up to the constant ``c``."""

    name: str = ""
    elementwise: bool = False  # terms per element (True) or per sample (False)
    fused_output: str | None = None  # the activation whose delta is c (A - Y)
    required_output: str | None = None  # the only legal output activation, if any

    def __init__(self, reduction: str = "mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{self.name}: unknown reduction {reduction!r}; expected one of {REDUCTIONS}"
            )
        self.reduction = reduction

    # -- the reduction constant ------------------------------------------------------------
    def scale(self, n_samples: float, n_outputs: int) -> float:
        """The constant ``c`` of ``L = c * sum(terms)`` for a batch of ``n_samples``.

        ``n_samples`` is the batch size, or the sum of the sample weights.
        """
        if self.reduction == "sum":
            return 1.0
        if self.reduction == "mean" and self.elementwise:
            return 1.0 / (n_samples * n_outputs)
        return 1.0 / n_samples

    # -- what subclasses implement ---------------------------------------------------------
    def _terms_sum(self, A: np.ndarray, Y: np.ndarray, work: np.ndarray, w) -> float:
        """Return ``sum(terms)`` (weighted by ``w`` per sample); may use ``work`` as scratch."""
        raise NotImplementedError

    def _gradient_core(self, A: np.ndarray, Y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write ``dL/dA / c`` (per unit weight) into ``out``."""
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------------
    def check_output(self, activation: activations.Activation | str) -> None:
        """Raise ValueError unless this loss may follow ``activation``."""
        name = activations.get(activation).name
        if self.required_output is not None and name != self.required_output:
            raise ValueError(
                f"loss {self.name!r} needs a {self.required_output!r} output layer, not {name!r}:"
                f" its logarithm needs probabilities. Use output_activation="
                f"{self.required_output!r}, or a loss that takes any output ('mse', 'half_sse')"
            )

    def __call__(self, A, Y, sample_weight=None) -> float:
        """The loss value for outputs ``A`` and targets ``Y``."""
        A, Y, w = _as_batch(A, Y, sample_weight)
        return self.value(A, Y, np.empty_like(A), w)

    def value(self, A, Y, work, sample_weight=None) -> float:
        """The loss value; ``work`` is a scratch array of A's shape."""
        n = A.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        return self.scale(n, A.shape[1]) * self._terms_sum(A, Y, work, sample_weight)

    def gradient(self, A, Y, out=None, sample_weight=None) -> np.ndarray:
        """``dL/dA``, written into ``out`` when given."""
        A, Y, w = _as_batch(A, Y, sample_weight)
        out = np.empty_like(A) if out is None else out
        n = A.shape[0] if w is None else float(np.sum(w))
        self._gradient_core(A, Y, out)
        _apply_scale(out, self.scale(n, A.shape[1]), w)
        return out

    def value_and_delta(self, A, Y, Z, activation, out, sample_weight=None, scratch=None):
        """The loss value and the output layer's delta ``D_L = dL/dZ_L``, written into ``out``.

        Uses the fused ``c (A - Y)`` for matched pairs; otherwise ``dL/dA`` through ``f'``.
        ``Z`` and ``A`` may be overwritten (as in :meth:`Activation.backward`).
        """
        n = A.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        c = self.scale(n, A.shape[1])
        loss = c * self._terms_sum(A, Y, out, sample_weight)
        if activation.name == self.fused_output:
            np.subtract(A, Y, out=out)  # D_L = c (A - Y), the matched-pair shortcut
            _apply_scale(out, c, sample_weight)
            return loss, out
        self._gradient_core(A, Y, out)
        _apply_scale(out, c, sample_weight)
        return loss, activation.backward(out, Z, A, scratch)  # D_L = dL/dA * f'(Z)

    def config(self) -> dict:
        """The loss's name and reduction, enough to rebuild it with :func:`get`."""
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class HalfSSE(Loss):
    """The article's loss: ``1/2 ||a - y||^2`` per sample. ``dL/dA = c (A - Y)``."""

    name = "half_sse"
    fused_output = "identity"

    def _terms_sum(self, A, Y, work, w):
        np.subtract(A, Y, out=work)
        return 0.5 * _weighted_sum(work, work, w)

    def _gradient_core(self, A, Y, out):
        return np.subtract(A, Y, out=out)


class MSE(Loss):
    """Squared error per element, ``(a - y)^2``, as PyTorch's ``MSELoss``.

    ``dL/dA = 2c (A - Y)``.
    """

    name = "mse"
    elementwise = True

    def _terms_sum(self, A, Y, work, w):
        return 2.0 * HalfSSE._terms_sum(self, A, Y, work, w)

    def _gradient_core(self, A, Y, out):
        np.subtract(A, Y, out=out)
        out *= 2.0
        return out


class CrossEntropy(Loss):
    """Categorical cross-entropy on softmax outputs: ``-sum_j y_j log a_j`` per sample.

    Targets are one-hot rows or probability rows summing to 1 (integer labels are turned into
    one-hot rows by the callers). ``dL/dA = -c Y / A``; with softmax the fused
    ``D_L = c (A - Y)``.
    """

    name = "cross_entropy"
    fused_output = "softmax"
    required_output = "softmax"

    def _terms_sum(self, A, Y, work, w):
        np.maximum(A, np.finfo(A.dtype).tiny, out=work)  # log(0) would be -inf
        np.log(work, out=work)
        return -_weighted_sum(work, Y, w)

    def _gradient_core(self, A, Y, out):
        np.maximum(A, np.finfo(A.dtype).tiny, out=out)
        np.divide(Y, out, out=out)
        return np.negative(out, out=out)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy per element on sigmoid outputs, as PyTorch's ``BCELoss``.

    Term ``-(y log a + (1 - y) log(1 - a))``; like PyTorch, each log is clamped at -100.
    ``dL/dA = c (A - Y) / (A (1 - A))``; with sigmoid the fused ``D_L = c (A - Y)``.
    """

    name = "binary_cross_entropy"
    elementwise = True
    fused_output = "sigmoid"
    required_output = "sigmoid"

    _log_floor = -100.0  # PyTorch's clamp of each logarithm

    def _terms_sum(self, A, Y, work, w):
        tiny = math.exp(self._log_floor)  # a Python float: no cast of A to float64
        np.maximum(A, tiny, out=work)
        np.log(work, out=work)
        np.maximum(work, self._log_floor, out=work)  # log a
        total = _weighted_sum(work, Y, w)  # sum y log a
        np.subtract(1.0, A, out=work)
        np.maximum(work, tiny, out=work)
        np.log(work, out=work)
        np.maximum(work, self._log_floor, out=work)  # log(1 - a)
        total += _weighted_sum(work, None, w) - _weighted_sum(work, Y, w)  # sum (1 - y) log(1-a)
        return -total

    def _gradient_core(self, A, Y, out):
        np.subtract(A, Y, out=out)
        out /= np.maximum(A * (1.0 - A), 1e-12)  # PyTorch's guard against dividing by 0
        return out


def _weighted_sum(X: np.ndarray, Y: np.ndarray | None, w) -> float:
    """``sum_ij w_i X_ij Y_ij`` (``Y`` None means ones, ``w`` None means ones)."""
    if Y is None:
        return float(X.sum() if w is None else np.einsum("ij,i->", X, w))
    return float(np.vdot(X, Y) if w is None else np.einsum("ij,ij,i->", X, Y, w))


def _apply_scale(out: np.ndarray, c: float, w) -> None:
    out *= c
    if w is not None:
        out *= w[:, None]


def _as_batch(A, Y, sample_weight):
    A = np.asarray(A)
    Y = np.asarray(Y, dtype=A.dtype)
    if A.ndim == 1:
        A = A[None, :]
    if Y.ndim == 1:
        Y = Y[None, :]
    if A.shape != Y.shape:
        raise ValueError(f"targets Y have shape {Y.shape}, but outputs have shape {A.shape}")
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=A.dtype)
    if w is not None and w.shape != (A.shape[0],):
        raise ValueError(f"sample_weight must have shape ({A.shape[0]},), got {w.shape}")
    return A, Y, w


_REGISTRY: dict[str, type[Loss]] = {
    cls.name: cls for cls in (HalfSSE, MSE, CrossEntropy, BinaryCrossEntropy)
}
_ALIASES = {
    "bce": "binary_cross_entropy",
    "ce": "cross_entropy",
    "squared_error": "mse",
    "log_loss": "cross_entropy",
    "quadratic": "half_sse",
}


def names() -> list[str]:
    """The names :func:`get` accepts."""
    return sorted(_REGISTRY)


def get(spec: str | dict | Loss, reduction: str | None = None) -> Loss:
    """Return a loss from a name (``"cross_entropy"``), a config dict, or an instance.

    >>> get("half_sse", reduction="sum")
    HalfSSE(reduction='sum')
    """
    if isinstance(spec, Loss):
        return spec if reduction is None else type(spec)(reduction=reduction)
    cls, params = registry_entry(spec, "loss", _REGISTRY, _ALIASES)
    return cls(reduction=reduction or params.get("reduction") or "mean")
