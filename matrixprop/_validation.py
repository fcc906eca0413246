"""Checks of user input that raise a clear ValueError or TypeError naming what is wrong."""

from __future__ import annotations

import numbers

import numpy as np


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1, or a ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def fraction(value, name: str) -> float:
    """``value`` as a float in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def non_negative(value, name: str) -> float:
    """``value`` as a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def registry_entry(spec, kind: str, registry: dict, aliases: dict | None = None,
                   params: dict | None = None) -> tuple[type, dict]:
    """The class registered under a name (``"relu"``) or a config dict (``{"name": ...}``),
    with its parameters; a clear error for anything else or an unknown name."""
    params = dict(params or {})
    if isinstance(spec, dict):
        params = {**{k: v for k, v in spec.items() if k != "name"}, **params}
        spec = spec.get("name")
    if not isinstance(spec, str):
        raise TypeError(f"{kind} must be a name, a config dict or a {kind} object, "
                        f"got {type(spec).__name__}")
    key = (aliases or {}).get(spec.lower(), spec.lower())
    if key not in registry:
        raise ValueError(f"unknown {kind} {spec!r}; expected one of {', '.join(sorted(registry))}")
    return registry[key], params


def _numeric(array, name: str) -> np.ndarray:
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular numeric array: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got an array of dtype {array.dtype}")
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ValueError if a float ``array`` holds NaN or an infinity.

    One sum in the array's own dtype decides (NaN and infinities propagate into it); only when
    it is not finite, which an overflow of large finite values can also cause, is every element
    checked.
    """
    if array.dtype.kind != "f":
        return
    with np.errstate(over="ignore"):
        if np.isfinite(np.sum(array)):
            return
    bad = ~np.isfinite(array)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (first at index {tuple(where.tolist())})"
        )


def inputs(X, n_features: int, dtype, name: str = "X", *, finite: bool = True) -> np.ndarray:
    """``X`` as a finite C-contiguous (n, n_features) array of ``dtype`` (``finite=False``:
    its values unchecked, for a caller that checks them itself)."""
    X = _numeric(X, name)
    if X.ndim != 2:
        hint = " (use X.reshape(1, -1) for a single sample)" if X.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {X.shape}{hint}")
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features per sample, but the network's input layer "
            f"expects {n_features}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    X = np.ascontiguousarray(X, dtype=dtype)
    if finite:
        check_finite(X, name)
    return X


def targets(Y, n_samples: int, n_outputs: int, loss, dtype) -> np.ndarray:
    """Targets as a (n_samples, n_outputs) array of ``dtype``, checked by ``loss`` (a
    :class:`matrixprop.losses.Loss`: its ``check_targets``).

    A 1-D ``Y`` holds class labels (integers in [0, n_outputs)) when the network has more than
    one output, and the target values when it has one.
    """
    Y = _numeric(Y, "Y")
    if Y.shape[:1] != (n_samples,):
        raise ValueError(f"X has {n_samples} samples but Y has shape {Y.shape}")
    if Y.ndim == 1 and n_outputs > 1:
        Y = one_hot_labels(Y, n_outputs, dtype)
    elif Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != n_outputs:
        raise ValueError(
            f"Y must have shape ({n_samples}, {n_outputs}) to match the network's "
            f"{n_outputs} outputs{' (or hold class labels, shape (n,))' if n_outputs > 1 else ''}"
            f", got {Y.shape}"
        )
    Y = np.ascontiguousarray(Y, dtype=dtype)
    check_finite(Y, "Y")
    loss.check_targets(Y)
    return Y


def one_hot_labels(labels: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """One-hot rows for integer ``labels``, with a clear error for bad labels."""
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"class labels must be integers, got dtype {labels.dtype}; pass integer labels "
            f"or targets of shape (n, {n_classes})"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(
            f"label {bad} is out of range: the network has {n_classes} outputs, so labels "
            f"must be in [0, {n_classes - 1}]"
        )
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def sample_weights(w, n_samples: int, dtype) -> np.ndarray | None:
    """Per-sample weights as a finite non-negative (n_samples,) array, or None."""
    if w is None:
        return None
    w = _numeric(w, "sample_weight")
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
    w = np.ascontiguousarray(w, dtype=dtype)
    check_finite(w, "sample_weight")
    if w.min() < 0 or not w.any():
        raise ValueError("sample_weight must be >= 0 with at least one positive weight")
    return w
