"""The dense layer: an affine map followed by a nonlinearity, forward and backward in matrix form.

One sample per ROW of a batch matrix, so the article's ``x_k = f(W x_{k-1} + b)`` reads::

    Z = X @ W.T + b          (B, n_out)
    A = f(Z)

and the backward pass, with ``D = dL/dZ`` for every neuron and sample at once::

    dL/dW = D.T @ X           (n_out, n_in): the sum over the batch of outer products
    dL/db = D.sum(axis=0)
    dL/dX = D @ W             the previous layer's dL/dA; times f'(Z_prev) it is D_prev

The layer owns no arrays of its own: its parameters are views into the network's flat buffer,
and its activations live in a workspace that the network allocates once per batch size.
"""

from __future__ import annotations

import numpy as np

from . import activations
from . import initializers as init_module
from ._validation import fraction, positive_int

__all__ = ["Dense"]


class LayerWorkspace:
    """Reused buffers of one layer for one batch size (allocated once, then written with out=)."""

    def __init__(self, layer: Dense, batch_size: int, dtype, *, keep_z: bool = False):
        shape = (batch_size, layer.n_out)
        self.Z = np.empty(shape, dtype)  # pre-activation
        # an activation computed from its output overwrites Z, unless Z is kept (the output
        # layer's logits, from which losses take their exact value)
        shared = layer.activation.from_output and not keep_z
        self.A = self.Z if shared else np.empty(shape, dtype)
        needs_scratch = layer.activation.needs_scratch or keep_z  # keep_z: the loss's scratch
        self.scratch = np.empty(shape, dtype) if needs_scratch else None
        self.G = np.empty(shape, dtype)  # dL/dA, then in place dL/dZ
        self.out = self.A  # what the next layer reads: A, or A after dropout (set by forward)
        if layer.dropout:
            self.mask = np.empty(shape, dtype)
            self.dropped = np.empty(shape, dtype)


class Dense:
    """A fully connected layer ``a = f(W x + b)`` with ``W`` of shape (n_out, n_in).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    activation : str or Activation
        ``f``; see :func:`matrixprop.activations.get`.
    init : str
        Weight initializer; see :mod:`matrixprop.initializers` (``"auto"``: He for relu-like
        activations, Glorot otherwise).
    bias : bool
        Whether the layer has a bias ``b``.
    dropout : float
        Inverted dropout on this layer's output during training: each output is zeroed with
        this probability and the others scaled by ``1 / (1 - dropout)``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation="sigmoid",
        *,
        init: str = "auto",
        bias: bool = True,
        dropout: float = 0.0,
    ):
        self.n_in = positive_int(n_in, "n_in")
        self.n_out = positive_int(n_out, "n_out")
        self.activation = activations.get(activation)
        init_module.resolve(init, self.activation.name)  # fail early on an unknown name
        self.init = init
        self.bias = bool(bias)
        self.dropout = fraction(dropout, "dropout")
        self.W: np.ndarray | None = None  # views into the network's buffers, set by bind()
        self.b: np.ndarray | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    @property
    def weight_size(self) -> int:
        return self.n_out * self.n_in

    @property
    def bias_size(self) -> int:
        return self.n_out if self.bias else 0

    def bind(self, W, b, dW, db) -> None:
        """Attach the parameter and gradient views this layer reads and writes."""
        self.W, self.b, self.dW, self.db = W, b, dW, db

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw fresh weights (and biases) with the layer's initializer."""
        init_module.initialize(self.init, self.W, self.b, rng, self.activation.name)

    # -- the matrix-form equations ---------------------------------------------------------
    def forward(self, X: np.ndarray, ws: LayerWorkspace, rng=None) -> np.ndarray:
        """``A = f(X W^T + b)``; with ``rng`` (training) dropout is applied to ``A``."""
        Z = np.matmul(X, self.W.T, out=ws.Z)  # Z = X W^T
        if self.bias:
            Z += self.b  # ... + b, broadcast over the batch
        A = self.activation.forward(Z, out=ws.A)  # A = f(Z)
        if rng is not None and self.dropout:
            return self._drop(A, ws, rng)
        return A

    def backward(self, X: np.ndarray, ws: LayerWorkspace, G_prev: np.ndarray | None) -> None:
        """From ``D = ws.G`` write dL/dW, dL/db and, when asked, ``G_prev = dL/dX``."""
        D = ws.G
        np.matmul(D.T, X, out=self.dW)  # dL/dW = D^T X
        if self.bias:
            np.sum(D, axis=0, out=self.db)  # dL/db = sum of D over the batch
        if G_prev is not None:
            np.matmul(D, self.W, out=G_prev)  # dL/dX = D W

    def delta(self, ws: LayerWorkspace, dropped: bool) -> np.ndarray:
        """Turn ``ws.G = dL/dA`` into ``D = dL/dZ = dL/dA * f'(Z)`` in place."""
        if dropped and self.dropout:
            ws.G *= ws.mask  # dropped units pass no gradient
        return self.activation.backward(ws.G, ws.Z, ws.A, ws.scratch)

    def _drop(self, A, ws, rng):
        keep = 1.0 - self.dropout
        rng.random(dtype=ws.mask.dtype, out=ws.mask)  # u in [0, 1)
        ws.mask += keep
        np.floor(ws.mask, out=ws.mask)  # 1 when u + keep >= 1: probability keep
        ws.mask *= 1.0 / keep
        return np.multiply(A, ws.mask, out=ws.dropped)

    # -- description -----------------------------------------------------------------------
    def config(self) -> dict:
        """Everything needed to rebuild the layer (not its parameters)."""
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "activation": self.activation.config(),
            "init": self.init,
            "bias": self.bias,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config: dict) -> Dense:
        """Rebuild a layer from :meth:`config`."""
        return cls(**config)

    def __repr__(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += f", dropout={self.dropout}" if self.dropout else ""
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r}{extra})"
