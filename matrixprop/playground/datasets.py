"""The playground's toy datasets: five 2-D classification sets and a 1-D regression curve.

Every set is drawn from a seeded generator, so the same (name, noise, seed) gives the same points.
Inputs lie mostly inside ``[-1, 1]`` (the page plots ``[-DOMAIN, DOMAIN]``); class labels are
0 and 1; the regression targets lie mostly inside ``[-1, 1]``. ``noise`` in ``[0, 1]`` scales
each set's own kind of disorder: jitter of the points, or of the curve's values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data import train_validation_split

__all__ = ["CLASSIFICATION", "DATASETS", "DOMAIN", "REGRESSION", "Split", "make_split"]

DOMAIN = 1.25  # the page shows inputs in [-DOMAIN, DOMAIN]
N_SAMPLES = 240


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A disk (class 1) inside a ring (class 0)."""
    y = np.arange(n) % 2
    radius = np.where(y == 1, rng.uniform(0.0, 0.45, n), rng.uniform(0.7, 1.0, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    X = radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return X + rng.normal(0, 0.15 * noise, X.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four quadrants: class 1 where both coordinates have the same sign."""
    X = rng.uniform(0.08, 1.0, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X + rng.normal(0, 0.25 * noise, X.shape), y


def _gaussians(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two round clouds on a diagonal."""
    y = np.arange(n) % 2
    centres = np.where(y[:, None] == 1, 0.45, -0.45)
    return centres + rng.normal(0, 0.15 + 0.35 * noise, (n, 2)), y


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spiral arms."""
    y = np.arange(n) % 2
    t = rng.uniform(0.05, 1.0, n)
    angle = 1.75 * 2 * np.pi * t + np.pi * y
    X = t[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return X + rng.normal(0, 0.12 * noise, X.shape), y


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interlocking half circles."""
    y = np.arange(n) % 2
    angle = rng.uniform(0, np.pi, n)
    upper = np.column_stack([np.cos(angle), np.sin(angle)])
    lower = np.column_stack([1 - np.cos(angle), 0.5 - np.sin(angle)])
    X = np.where(y[:, None] == 1, lower, upper)
    X = (X - [0.5, 0.25]) * 0.65
    return X + rng.normal(0, 0.2 * noise, X.shape), y


def _curve(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regression: ``y = 0.8 sin(3 x)`` for x in [-1, 1], plus Gaussian noise."""
    x = rng.uniform(-1.0, 1.0, n)
    y = 0.8 * np.sin(3.0 * x) + rng.normal(0, 0.3 * noise, n)
    return x[:, None], y


Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]
CLASSIFICATION: dict[str, Generator] = {
    "circles": _circles, "xor": _xor, "gaussians": _gaussians, "spiral": _spiral,
    "moons": _moons,
}
REGRESSION: dict[str, Generator] = {"curve": _curve}
DATASETS: dict[str, Generator] = {**CLASSIFICATION, **REGRESSION}


@dataclass(frozen=True, eq=False)
class Split:
    """A toy dataset split into training and test samples.

    ``X_*`` are float32 arrays (n, 1 or 2); ``y_*`` int64 labels 0/1 for classification,
    float32 targets for regression.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def regression(self) -> bool:
        return self.name in REGRESSION

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def make_split(name: str, noise: float, test_fraction: float, seed: int,
               n_samples: int = N_SAMPLES) -> Split:
    """Draw dataset ``name`` and split it, both from ``seed``.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    noise : float
        In [0, 1]: how much each set's points are jittered.
    test_fraction : float
        Share of the samples held out as the test set (stratified for classes).
    seed : int
        Seeds both the points and the split.
    n_samples : int
        Samples in all.

    Returns
    -------
    Split
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    X, y = DATASETS[name](n_samples, noise, np.random.default_rng([seed, 1]))
    X = X.astype(np.float32)
    y = y.astype(np.float32) if name in REGRESSION else y.astype(np.int64)
    X_train, X_test, y_train, y_test = train_validation_split(X, y, test_fraction, seed)
    return Split(name, X_train, y_train, X_test, y_test)
