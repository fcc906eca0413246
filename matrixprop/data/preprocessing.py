"""Label encoding and seeded train/validation splits."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["one_hot", "train_validation_split"]


def one_hot(
    labels: np.ndarray, n_classes: int | None = None, dtype: DTypeLike = "float32"
) -> np.ndarray:
    """Encode integer class labels as one-hot rows.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Class indices in ``0 .. n_classes - 1``; floats are accepted when they are
        whole numbers.
    n_classes : int, optional
        Number of columns. Defaults to the largest label plus one.
    dtype : data-type, default "float32"
        Type of the result.

    Returns
    -------
    numpy.ndarray of shape (n, n_classes)
        Row ``i`` is 1 in column ``labels[i]`` and 0 elsewhere.

    Raises
    ------
    ValueError
        If `labels` is not 1-D, holds a value that is not a whole number or lies
        outside ``0 .. n_classes - 1``, or `n_classes` is below 1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels: expected a 1-D array, got shape {labels.shape}")
    if labels.dtype.kind not in "biuf" or (
        labels.dtype.kind == "f" and not np.all(labels == np.round(labels))
    ):
        raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 1
    if n_classes < 1:
        raise ValueError(f"n_classes: expected 1 or more, got {n_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(f"labels: {bad} is outside 0 .. {n_classes - 1} (n_classes={n_classes})")
    encoded = np.zeros((labels.size, n_classes), dtype=dtype)
    encoded[np.arange(labels.size), labels.astype(np.intp)] = 1
    return encoded


def train_validation_split(
    X: np.ndarray,
    y: np.ndarray | None = None,
    fraction: float = 0.2,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Split samples into a training and a held-out part, reproducibly.

    The held-out part has ``ceil(fraction * n)`` samples. When `y` holds integer
    class labels (1-D, integer type) the split is stratified: each class is held out
    in proportion to its size, the rounding going to the classes with the largest
    remainders. Both parts keep the samples' original order.

    Parameters
    ----------
    X : numpy.ndarray
        Samples along the first axis.
    y : numpy.ndarray, optional
        Targets, one per sample.
    fraction : float, default 0.2
        Share of the samples to hold out, strictly between 0 and 1.
    seed : int or None, default 0
        Seed of the `numpy.random.Generator` that chooses the samples.

    Returns
    -------
    X_train, X_held_out : numpy.ndarray
    y_train, y_held_out : numpy.ndarray or None
        None when `y` is None. The order is that of scikit-learn's ``train_test_split``.

    Raises
    ------
    ValueError
        If `fraction` is not strictly between 0 and 1, `X` and `y` have different
        lengths, or the split would leave either part empty.
    """
    X = np.asarray(X)
    n = len(X)
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"y: expected {n} targets to match X, got {len(y)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: expected a number strictly between 0 and 1, got {fraction}")
    n_held = math.ceil(round(fraction * n, 9))
    if not 0 < n_held < n:
        raise ValueError(f"fraction={fraction} of {n} samples leaves one part of the split empty")
    rng = np.random.default_rng(seed)
    if y is not None and y.ndim == 1 and y.dtype.kind in "biu":
        held = _stratified(y, n_held, rng)
    else:
        held = rng.permutation(n)[:n_held]
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    if y is None:
        return X[~mask], X[mask], None, None
    return X[~mask], X[mask], y[~mask], y[mask]


def _stratified(y: np.ndarray, n_held: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `n_held` samples drawn from each class in proportion to its size."""
    _, classes, counts = np.unique(y, return_inverse=True, return_counts=True)
    take, remainder = np.divmod(counts * n_held, len(y))
    # The shares' fractional parts sum to a whole number r: the r largest (ties in random
    # order) round up, so the quotas add up to n_held and none exceeds its class's size.
    order = rng.permutation(len(counts))
    order = order[np.argsort(-remainder[order], kind="stable")]
    take[order[: n_held - take.sum()]] += 1
    return np.concatenate(
        [rng.permutation(np.flatnonzero(classes == k))[: take[k]] for k in range(len(counts))]
    )
