"""Activation functions f and their derivatives f', in the in-place form the engine uses.

Every activation offers two ways to be called:

* the readable form, for learners and tests: ``f(z)`` returns ``f(z)`` and ``f.derivative(z)``
  returns ``f'(z)``, both as new arrays;
* the engine form, which allocates nothing: ``f.forward(Z, out=A)`` writes ``A = f(Z)`` and
  ``f.backward(G, Z, A)`` turns the upstream gradient ``G = dL/dA`` into ``D = dL/dZ``
  **in place**, ``G <- G * f'(Z)``. ``backward`` may overwrite ``Z`` and ``A``: once a layer's
  delta is known, the backward pass needs neither again.

The engine form runs under ``np.errstate(over="ignore")`` (set once per pass by the network
and by ``__call__``): an overflow to infinity inside sigmoid's ``exp(-z)`` gives the right limit.

Each activation also states its rule for one number, ``scalar(z, p) -> (f(z), f'(z))`` with
``p`` its parameter (:attr:`Activation.parameter`), written with :mod:`math` alone: the compiled
engine fuses it into its loops, so an activation is this one class and nothing else. Softmax,
whose value needs the whole row, has none; the compiled engine knows it by name.

Activations whose derivative is a function of their output (``from_output = True``: identity,
sigmoid, tanh, relu, softplus, softmax) are computed in place over ``Z``, so the layer keeps one
buffer instead of two: the backward pass stores what it needs, no more.
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import registry_entry

__all__ = [
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softplus",
    "GELU",
    "SiLU",
    "Softmax",
    "get",
    "names",
]


class Activation:
    """Base class: an elementwise nonlinearity ``a = f(z)`` with its derivative."""

    name: str = ""
    from_output: bool = False  # f'(z) can be computed from a = f(z) alone
    needs_scratch: bool = False  # backward needs one more buffer of Z's shape
    output_only: bool = False  # may only be used in the output layer
    scalar = None  # (z, p) -> (f(z), f'(z)) for one number, in subclasses: the compiled form

    @property
    def parameter(self) -> float:
        """The number ``p`` that :attr:`scalar` receives: the activation's one parameter."""
        return 0.0

    def forward(self, Z: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write ``f(Z)`` into ``out`` (which may be ``Z`` itself) and return it."""
        raise NotImplementedError

    def backward(
        self, G: np.ndarray, Z: np.ndarray, A: np.ndarray, scratch: np.ndarray | None = None
    ) -> np.ndarray:
        """Turn ``G = dL/dA`` into ``D = dL/dZ = G * f'(Z)`` in place; may overwrite Z and A."""
        raise NotImplementedError

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Return ``f(z)`` as a new array."""
        z = np.asarray(z)
        with np.errstate(over="ignore"):
            return self.forward(z, out=np.empty_like(z, dtype=np.result_type(z, np.float32)))

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Return ``f'(z)`` elementwise as a new array (the Jacobian's diagonal)."""
        z = np.array(z, dtype=np.result_type(z, np.float32))
        a = self(z)
        d = np.ones_like(z)
        scratch = np.empty_like(z) if self.needs_scratch else None
        return self.backward(d, z.copy(), a, scratch)

    def config(self) -> dict:
        """The activation's name and parameters, enough to rebuild it with :func:`get`."""
        return {"name": self.name}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config().items())))


def _logistic(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = 1 / (1 + exp(-Z))``, in place when ``out`` is ``Z``."""
    np.negative(Z, out=out)
    np.exp(out, out=out)  # may overflow to inf: 1 / (1 + inf) = 0 is the right limit
    out += 1.0
    return np.reciprocal(out, out=out)


class Identity(Activation):
    """``f(z) = z``; ``f'(z) = 1``."""

    name = "identity"
    from_output = True

    @staticmethod
    def scalar(z, p):
        return z, 1.0

    def forward(self, Z, out):
        if out is not Z:
            np.copyto(out, Z)
        return out

    def backward(self, G, Z, A, scratch=None):
        return G


class Sigmoid(Activation):
    """The logistic function ``f(z) = 1 / (1 + exp(-z))``; ``f'(z) = f(z) (1 - f(z))``."""

    name = "sigmoid"
    from_output = True

    @staticmethod
    def scalar(z, p):
        a = 0.0 if z <= -700.0 else 1.0 / (1.0 + math.exp(-z))  # exp(700) is near overflow
        return a, a * (1.0 - a)  # a NaN z stays NaN, as in the NumPy form

    def forward(self, Z, out):
        return _logistic(Z, out)

    def backward(self, G, Z, A, scratch=None):
        G *= A  # G * a
        np.subtract(1.0, A, out=A)
        G *= A  # G * a * (1 - a)
        return G


class Tanh(Activation):
    """``f(z) = tanh(z)``; ``f'(z) = 1 - f(z)^2``."""

    name = "tanh"
    from_output = True

    @staticmethod
    def scalar(z, p):
        a = math.tanh(z)
        return a, 1.0 - a * a

    def forward(self, Z, out):
        return np.tanh(Z, out=out)

    def backward(self, G, Z, A, scratch=None):
        np.multiply(A, A, out=A)
        np.subtract(1.0, A, out=A)
        G *= A
        return G


class ReLU(Activation):
    """``f(z) = max(z, 0)``; ``f'(z) = 1 where z > 0, else 0`` (0 at the kink, as PyTorch)."""

    name = "relu"
    from_output = True

    @staticmethod
    def scalar(z, p):
        return (0.0, 0.0) if z <= 0.0 else (z, 1.0)  # NaN stays NaN, as np.maximum keeps it

    def forward(self, Z, out):
        return np.maximum(Z, 0.0, out=out)

    def backward(self, G, Z, A, scratch=None):
        np.minimum(A, 1.0, out=A)  # a >= 0, so ceil(min(a, 1)) is 1 where z > 0, else 0:
        np.ceil(A, out=A)  # branch-free and in place (sign and heaviside branch per element)
        G *= A
        return G


class LeakyReLU(Activation):
    """``f(z) = z where z > 0, else slope * z``; ``f'(z) = 1 or slope``."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        if not math.isfinite(negative_slope):
            raise ValueError(f"leaky_relu: negative_slope must be finite, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    @property
    def parameter(self):
        return self.negative_slope

    @staticmethod
    def scalar(z, p):
        return (z, 1.0) if z > 0.0 else (p * z, p)

    def forward(self, Z, out):
        np.multiply(Z, self.negative_slope, out=out)
        return np.maximum(Z, out, out=out) if self.negative_slope <= 1 else np.minimum(
            Z, out, out=out
        )

    def backward(self, G, Z, A, scratch=None):
        s = self.negative_slope
        np.clip(Z, 0.0, 1.0, out=A)
        np.ceil(A, out=A)  # 1 where z > 0, else 0, branch-free (as in ReLU)
        A *= 1.0 - s
        A += s  # f'(z): 1 where z > 0, else slope
        G *= A
        return G

    def config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}


class ELU(Activation):
    """``f(z) = z where z > 0, else alpha (exp(z) - 1)``; ``f'(z) = 1 or f(z) + alpha``."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"elu: alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)

    @property
    def parameter(self):
        return self.alpha

    @staticmethod
    def scalar(z, p):
        if z > 0.0:
            return z, 1.0
        a = p * math.expm1(z)
        return a, a + p

    def forward(self, Z, out):
        np.minimum(Z, 0.0, out=out)
        np.expm1(out, out=out)
        out *= self.alpha
        return np.maximum(out, Z, out=out) if self.alpha <= 1 else np.add(
            out, np.maximum(Z, 0.0), out=out
        )

    def backward(self, G, Z, A, scratch=None):
        np.minimum(A, 0.0, out=A)
        A += self.alpha  # f(z) + alpha where z <= 0, alpha where z > 0
        np.clip(Z, 0.0, 1.0, out=Z)
        np.ceil(Z, out=Z)  # 1 where z > 0, else 0
        Z *= 1.0 - self.alpha
        A += Z  # and 1 where z > 0
        G *= A
        return G

    def config(self):
        return {"name": self.name, "alpha": self.alpha}


class Softplus(Activation):
    """``f(z) = log(1 + exp(z))``; ``f'(z) = sigmoid(z) = 1 - exp(-f(z))``.

    Unlike PyTorch's ``Softplus`` there is no linear threshold: the exact function is used for
    every z (they differ by less than ``exp(-20)`` where PyTorch switches to ``z``).
    """

    name = "softplus"
    from_output = True

    @staticmethod
    def scalar(z, p):
        a = max(z, 0.0) + math.log1p(math.exp(-abs(z)))
        return a, -math.expm1(-a)

    def forward(self, Z, out):
        return np.logaddexp(Z, 0.0, out=out)

    def backward(self, G, Z, A, scratch=None):
        np.negative(A, out=A)
        np.expm1(A, out=A)
        np.negative(A, out=A)  # 1 - exp(-a), accurate for small a
        G *= A
        return G


class GELU(Activation):
    """The Gaussian error linear unit in its tanh form (PyTorch's ``approximate="tanh"``).

    ``f(z) = z/2 (1 + t)`` with ``t = tanh(c (z + k z^3))``, ``c = sqrt(2/pi)``, ``k = 0.044715``;
    ``f'(z) = (1 + t)/2 * (1 + c z (1 - t) (1 + 3 k z^2))``.
    """

    name = "gelu"
    needs_scratch = True
    _c = math.sqrt(2.0 / math.pi)
    _k = 0.044715

    @staticmethod
    def scalar(z, p):
        c, k = 0.7978845608028654, 0.044715  # sqrt(2 / pi), and the cubic's coefficient
        t = math.tanh(c * z * (1.0 + k * z * z))
        slope = c * z * (1.0 - t) * (1.0 + 3.0 * k * z * z)
        return 0.5 * z * (1.0 + t), 0.5 * (1.0 + t) * (1.0 + slope)

    def _tanh_inner(self, Z, out):
        np.multiply(Z, Z, out=out)
        out *= self._k
        out += 1.0
        out *= Z
        out *= self._c  # c (z + k z^3)
        return np.tanh(out, out=out)

    def forward(self, Z, out):
        t = self._tanh_inner(Z, out)
        t += 1.0
        t *= Z
        t *= 0.5
        return t

    def backward(self, G, Z, A, scratch=None):
        t = self._tanh_inner(Z, A)
        np.multiply(Z, Z, out=scratch)
        scratch *= 3.0 * self._k
        scratch += 1.0
        scratch *= Z
        scratch *= self._c  # c z (1 + 3 k z^2)
        np.subtract(1.0, t, out=Z)
        scratch *= Z
        scratch += 1.0  # 1 + c z (1 - t)(1 + 3 k z^2)
        t += 1.0
        t *= 0.5  # (1 + t) / 2
        G *= t
        G *= scratch
        return G


class SiLU(Activation):
    """The sigmoid linear unit (swish), as ``torch.nn.SiLU``: ``f(z) = z sigmoid(z)``;
    ``f'(z) = s (1 + z (1 - s))`` with ``s = sigmoid(z)``."""

    name = "silu"
    needs_scratch = True

    @staticmethod
    def scalar(z, p):
        s = 0.0 if z <= -700.0 else 1.0 / (1.0 + math.exp(-z))
        return z * s, s * (1.0 + z * (1.0 - s))

    def forward(self, Z, out):
        _logistic(Z, out)  # s
        out *= Z  # z s
        return out

    def backward(self, G, Z, A, scratch=None):
        _logistic(Z, scratch)  # s
        np.subtract(1.0, scratch, out=A)
        A *= Z
        A += 1.0  # 1 + z (1 - s)
        G *= scratch
        G *= A
        return G


class Softmax(Activation):
    """``f(z)_j = exp(z_j) / sum_i exp(z_i)`` over each row; output layer only.

    Its Jacobian is not diagonal: ``D = S * (G - sum(G * S, axis=1))`` with ``S = f(Z)``.
    ``derivative`` therefore returns the diagonal only, ``S (1 - S)``.
    """

    name = "softmax"
    from_output = True
    output_only = True

    def __init__(self):
        self._rows: dict[tuple, np.ndarray] = {}

    def _row_buffer(self, like: np.ndarray) -> np.ndarray:
        key = (like.shape[0], like.dtype)
        buf = self._rows.get(key)
        if buf is None:
            buf = self._rows[key] = np.empty((like.shape[0], 1), dtype=like.dtype)
        return buf

    def forward(self, Z, out):
        rows = self._row_buffer(Z)
        np.max(Z, axis=1, keepdims=True, out=rows)
        np.subtract(Z, rows, out=out)  # shift for stability: the largest logit becomes 0
        np.exp(out, out=out)
        np.sum(out, axis=1, keepdims=True, out=rows)
        out /= rows
        return out

    def backward(self, G, Z, A, scratch=None):
        rows = self._row_buffer(G)
        np.einsum("ij,ij->i", G, A, out=rows[:, 0])  # sum_j G_ij S_ij
        G -= rows
        G *= A
        return G

    def __call__(self, z):
        """Softmax of each row of ``z`` (a 1-D ``z`` is one row)."""
        z = np.asarray(z)
        if z.ndim == 1:
            return super().__call__(z.reshape(1, -1)).reshape(z.shape)
        return super().__call__(z)

    def derivative(self, z):
        s = self(z)
        return s * (1.0 - s)


_REGISTRY: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, GELU, SiLU, Softmax)
}
_ALIASES = {"linear": "identity", "logistic": "sigmoid", "none": "identity"}


def names() -> list[str]:
    """The names :func:`get` accepts."""
    return sorted(_REGISTRY)


def classes() -> list[type[Activation]]:
    """Every activation class :func:`get` knows, in the order they were registered."""
    return list(_REGISTRY.values())


def get(spec: str | dict | Activation | None, **params) -> Activation:
    """Return a new activation from a name (``"relu"``), a config dict, or an instance.

    >>> get("leaky_relu", negative_slope=0.2)
    LeakyReLU(negative_slope=0.2)
    """
    if isinstance(spec, Activation):
        return type(spec)(**{k: v for k, v in spec.config().items() if k != "name"})
    cls, params = registry_entry("identity" if spec is None else spec, "activation", _REGISTRY,
                                 _ALIASES, params)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"activation {cls.name!r}: bad parameters {params}: {exc}") from None
