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

The two losses that need probabilities take their value from the output layer's logits ``Z``
when they are given (log-sum-exp for cross-entropy, ``log(exp(z(1-y)) + exp(-zy))`` for binary
cross-entropy), as PyTorch's ``CrossEntropyLoss`` and ``BCEWithLogitsLoss`` do: exact also where
the probabilities round to 0 or 1. Both engines report that value.

Each loss also states its rule for one output element, ``scalar(a, y) -> (term, dterm/da)``
(and ``logit_term(z, y, lse)`` for the two above), written with :mod:`math` so that the compiled
engine fuses it into its loops.
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
    logit_term = None  # (z, y, lse) -> one element's term from its logit, where it has one

    def __init__(self, reduction: str = "mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{self.name}: unknown reduction {reduction!r}; expected one of {REDUCTIONS}"
            )
        self.reduction = reduction

    # -- the reduction constant ------------------------------------------------------------
    def scale_form(self) -> tuple[bool, bool]:
        """Whether the constant ``c`` divides by the batch's samples, and whether by the
        outputs too (PyTorch's mean over every element)."""
        if self.reduction == "sum":
            return False, False
        return True, self.reduction == "mean" and self.elementwise

    def scale(self, n_samples: float, n_outputs: int) -> float:
        """The constant ``c`` of ``L = c * sum(terms)`` for a batch of ``n_samples``.

        ``n_samples`` is the batch size, or the sum of the sample weights.
        """
        per_sample, per_output = self.scale_form()
        return 1.0 / ((n_samples if per_sample else 1.0) * (n_outputs if per_output else 1.0))

    # -- what subclasses implement ---------------------------------------------------------
    @staticmethod
    def scalar(a: float, y: float) -> tuple[float, float]:
        """One element's term and its derivative ``d term / d a`` (per-sample losses: the
        element's share of the sample's term), for the compiled engine."""
        raise NotImplementedError

    def _terms_sum(self, A: np.ndarray, Y: np.ndarray, work: np.ndarray, w) -> float:
        """Return ``sum(terms)`` (weighted by ``w`` per sample); may use ``work`` as scratch."""
        raise NotImplementedError

    def _logit_terms_sum(self, Z, Y, work, extra, w) -> float:
        """``sum(terms)`` from the output layer's logits ``Z`` (losses with a required output);
        ``work`` and ``extra`` are scratch of Z's shape."""
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

    def check_targets(self, Y: np.ndarray) -> None:
        """Raise ValueError unless ``Y`` holds targets this loss takes (the two that need
        probabilities need targets in [0, 1])."""
        if self.required_output is not None and (Y.min() < 0 or Y.max() > 1):
            raise ValueError(f"loss {self.name!r} needs targets in [0, 1]")

    def __call__(self, A, Y, sample_weight=None) -> float:
        """The loss value for outputs ``A`` and targets ``Y`` (probabilities: the logarithms
        of cross-entropies are clamped as PyTorch's ``BCELoss`` clamps them; the networks'
        own losses are exact, from the logits)."""
        A, Y, w = _as_batch(A, Y, sample_weight)
        return self.value(A, Y, np.empty_like(A), w)

    def count(self, n_rows: int, sample_weight) -> float:
        """The number of samples a batch counts for: its rows, or its sum of weights."""
        return n_rows if sample_weight is None else float(np.sum(sample_weight))

    def terms_sum(self, A, Y, work, sample_weight=None, Z=None, extra=None) -> float:
        """``sum(terms)``, weighted per sample; from the logits ``Z`` when they are given and
        this loss has a required output activation (``extra``: a second scratch)."""
        if Z is not None and self.required_output is not None:
            return self._logit_terms_sum(Z, Y, work, extra, sample_weight)
        return self._terms_sum(A, Y, work, sample_weight)

    def value(self, A, Y, work, sample_weight=None, *, Z=None, extra=None, count=None) -> float:
        """The loss value; ``work`` (and ``extra``) are scratch arrays of A's shape, ``Z`` the
        logits (see :meth:`terms_sum`), ``count`` the samples the reduction divides by
        (default :meth:`count`)."""
        n = self.count(A.shape[0], sample_weight) if count is None else count
        return self.scale(n, A.shape[1]) * self.terms_sum(A, Y, work, sample_weight, Z, extra)

    def gradient(self, A, Y, out=None, sample_weight=None) -> np.ndarray:
        """``dL/dA``, written into ``out`` when given."""
        A, Y, w = _as_batch(A, Y, sample_weight)
        out = np.empty_like(A) if out is None else out
        self._gradient_core(A, Y, out)
        _apply_scale(out, self.scale(self.count(A.shape[0], w), A.shape[1]), w)
        return out

    def value_and_delta(self, A, Y, Z, activation, out, sample_weight=None, scratch=None,
                        count=None):
        """The loss value and the output layer's delta ``D_L = dL/dZ_L``, written into ``out``.

        Uses the fused ``c (A - Y)`` for matched pairs; otherwise ``dL/dA`` through ``f'``.
        ``Z`` and ``A`` may be overwritten (as in :meth:`Activation.backward`); when ``Z`` is
        not ``A`` it holds the logits, from which the value is exact. ``count``: the samples
        the reduction divides by (default: the batch's, :meth:`count`).
        """
        n = self.count(A.shape[0], sample_weight) if count is None else count
        c = self.scale(n, A.shape[1])
        logits = Z if Z is not A else None
        loss = c * self.terms_sum(A, Y, out, sample_weight, logits, scratch)
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

    @staticmethod
    def scalar(a, y):
        return 0.5 * (a - y) * (a - y), a - y

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

    @staticmethod
    def scalar(a, y):
        return (a - y) * (a - y), 2.0 * (a - y)

    def _terms_sum(self, A, Y, work, w):
        np.subtract(A, Y, out=work)
        return _weighted_sum(work, work, w)

    def _gradient_core(self, A, Y, out):
        np.subtract(A, Y, out=out)
        out *= 2.0
        return out


class CrossEntropy(Loss):
    """Categorical cross-entropy on softmax outputs: ``-sum_j y_j log a_j`` per sample.

    Targets are one-hot rows or probability rows summing to 1 (integer labels are turned into
    one-hot rows by the callers). ``dL/dA = -c Y / A``; with softmax the fused
    ``D_L = c (A - Y)``. From the logits, ``log a_j = z_j - logsumexp(z)``.
    """

    name = "cross_entropy"
    fused_output = "softmax"
    required_output = "softmax"

    @staticmethod
    def scalar(a, y):
        return (-y * max(math.log(a), -100.0) if y != 0.0 else 0.0), -y / max(a, 1e-38)

    @staticmethod
    def logit_term(z, y, lse):
        """One element's term from its logit ``z`` and its row's log-sum-exp ``lse``."""
        return y * (lse - z) if y != 0.0 else 0.0

    def check_targets(self, Y):
        super().check_targets(Y)
        sums = Y.sum(axis=1, dtype=np.float64)
        if not np.allclose(sums, 1.0, atol=1e-3):
            row = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(
                f"loss 'cross_entropy' needs target rows that sum to 1 (one-hot or "
                f"probabilities); row {row} sums to {sums[row]:.4g}"
            )

    def _logit_terms_sum(self, Z, Y, work, extra, w):
        top = np.max(Z, axis=1, keepdims=True)  # the shift that keeps exp from overflowing
        np.subtract(Z, top, out=work)
        np.exp(work, out=work)
        log_total = np.log(np.sum(work, axis=1, keepdims=True))
        np.subtract(Z, top, out=work)
        work -= log_total  # log softmax(Z), exact where softmax rounds to 0
        return -_weighted_sum(work, Y, w)

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

    Term ``-(y log a + (1 - y) log(1 - a))``; on probabilities each log is clamped at -100,
    like PyTorch's ``BCELoss``; from the logits it is ``log(exp(z (1 - y)) + exp(-z y))``
    (which is ``softplus(z) - z y``), as PyTorch's ``BCEWithLogitsLoss``.
    ``dL/dA = c (A - Y) / (A (1 - A))``; with sigmoid the fused ``D_L = c (A - Y)``.
    """

    name = "binary_cross_entropy"
    elementwise = True
    fused_output = "sigmoid"
    required_output = "sigmoid"

    _log_floor = -100.0  # PyTorch's clamp of each logarithm

    @staticmethod
    def scalar(a, y):
        log_a = max(math.log(a), -100.0) if a > 0.0 else -100.0
        log_not_a = max(math.log(1.0 - a), -100.0) if a < 1.0 else -100.0
        return -(y * log_a + (1.0 - y) * log_not_a), (a - y) / max(a * (1.0 - a), 1e-12)

    @staticmethod
    def logit_term(z, y, lse):
        """One element's term from its logit ``z`` (``lse`` is not used)."""
        return max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z)))

    def _logit_terms_sum(self, Z, Y, work, extra, w):
        extra = np.empty_like(Z) if extra is None else extra
        np.multiply(Z, Y, out=extra)  # z y
        np.subtract(Z, extra, out=work)  # z (1 - y)
        np.negative(extra, out=extra)  # -z y
        np.logaddexp(work, extra, out=work)  # log(exp(z (1 - y)) + exp(-z y)), elementwise
        return _weighted_sum(work, None, w)

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


def classes() -> list[type[Loss]]:
    """Every loss class :func:`get` knows, in the order they were registered."""
    return list(_REGISTRY.values())


def get(spec: str | dict | Loss, reduction: str | None = None) -> Loss:
    """Return a loss from a name (``"cross_entropy"``), a config dict, or an instance.

    >>> get("half_sse", reduction="sum")
    HalfSSE(reduction='sum')
    """
    if isinstance(spec, Loss):
        return spec if reduction is None else type(spec)(reduction=reduction)
    cls, params = registry_entry(spec, "loss", _REGISTRY, _ALIASES)
    return cls(reduction=reduction or params.get("reduction") or "mean")
