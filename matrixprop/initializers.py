"""Weight initializers. Each fills a weight matrix of shape (n_out, n_in) from a NumPy Generator.

Biases start at zero, except in Nielsen's two schemes (``normal``, ``normal_scaled``), which draw
them from N(0, 1) as his networks do.

=====================  ==========================================================
name                   distribution of each weight
=====================  ==========================================================
``glorot_uniform``     U(-r, r), r = sqrt(6 / (n_in + n_out))   (alias ``xavier_uniform``)
``glorot_normal``      N(0, 2 / (n_in + n_out))                 (alias ``xavier_normal``)
``he_uniform``         U(-r, r), r = sqrt(6 / n_in)             (alias ``kaiming_uniform``)
``he_normal``          N(0, 2 / n_in)                           (alias ``kaiming_normal``)
``lecun_uniform``      U(-r, r), r = sqrt(3 / n_in)
``lecun_normal``       N(0, 1 / n_in)                           (alias ``lecun``)
``normal``             N(0, 1), biases too (Nielsen's first, "large" init)
``normal_scaled``      N(0, 1 / n_in), biases N(0, 1) (Nielsen's improved init)
``auto``               he_uniform before relu-like activations, glorot_uniform otherwise
=====================  ==========================================================
"""

from __future__ import annotations

import numpy as np

__all__ = ["initialize", "names"]

_RELU_LIKE = {"relu", "leaky_relu", "elu", "gelu"}

_ALIASES = {
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "lecun": "lecun_normal",
    "standard_normal": "normal",
}


def _uniform(rng, shape, limit):
    return rng.uniform(-limit, limit, size=shape)


def _normal(rng, shape, std):
    return rng.normal(0.0, std, size=shape)


# name -> (sampler, variance numerator (None: 1), fan it divides, biases drawn from N(0, 1))
_SCHEMES = {
    "glorot_uniform": (_uniform, 6.0, "avg", False),
    "glorot_normal": (_normal, 2.0, "avg", False),
    "he_uniform": (_uniform, 6.0, "in", False),
    "he_normal": (_normal, 2.0, "in", False),
    "lecun_uniform": (_uniform, 3.0, "in", False),
    "lecun_normal": (_normal, 1.0, "in", False),
    "normal": (_normal, None, "in", True),
    "normal_scaled": (_normal, 1.0, "in", True),
}


def names() -> list[str]:
    """The names :func:`initialize` accepts (aliases included)."""
    return sorted([*_SCHEMES, *_ALIASES, "auto"])


def resolve(name: str, activation_name: str) -> str:
    """The canonical scheme name for ``name``, with ``"auto"`` decided by the activation."""
    if not isinstance(name, str):
        raise TypeError(f"init must be a name, got {type(name).__name__}")
    key = name.lower()
    if key == "auto":
        return "he_uniform" if activation_name in _RELU_LIKE else "glorot_uniform"
    key = _ALIASES.get(key, key)
    if key not in _SCHEMES:
        raise ValueError(f"unknown init {name!r}; expected one of {', '.join(names())}")
    return key


def initialize(
    name: str, W: np.ndarray, b: np.ndarray | None, rng: np.random.Generator, activation="identity"
) -> None:
    """Fill ``W`` (shape (n_out, n_in)) and ``b`` in place with the scheme ``name``."""
    key = resolve(name, activation)
    sampler, numerator, fan, normal_biases = _SCHEMES[key]
    n_out, n_in = W.shape
    fan_size = n_in if fan == "in" else n_in + n_out
    W[...] = sampler(rng, W.shape, 1.0 if numerator is None else np.sqrt(numerator / fan_size))
    if b is not None:
        b[...] = _normal(rng, b.shape, 1.0) if normal_biases else 0.0
