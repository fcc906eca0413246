"""The GEMM bound: the time of only the matrix products one step needs.

Per layer ``k`` with input ``X`` (B, n_in), weights ``W`` (n_out, n_in) and delta ``D``
(B, n_out), a training step multiplies::

    Z = X W^T       forward
    dW = D^T X      backward, the weight gradient
    G = D W         backward, dL/dX for the layer below (not for the first layer: nothing
                    below needs it)

Inference runs the forward products only. Every array is allocated once and every product
writes with ``out=``, so the loop does nothing but BLAS calls: no framework can do the same
step faster on this BLAS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

__all__ = ["GemmPlan"]


@dataclass
class GemmPlan:
    """The products of one step, as ``(a, b, out)`` triples on preallocated arrays.

    Build it with :meth:`for_network`; :meth:`run` performs the step ``n`` times.
    """

    products: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    batch: int

    @classmethod
    def for_network(cls, sizes: Sequence[int], batch: int, *, train: bool = True,
                    dtype="float32", seed: int = 0) -> GemmPlan:
        """The plan of one training step (``train``) or one forward pass of ``batch`` rows."""
        rng = np.random.default_rng(seed)
        dtype = np.dtype(dtype)

        def filled(*shape: int) -> np.ndarray:  # random values: no zeros or denormals
            return rng.random(shape, dtype=dtype)

        forward, backward = [], []
        X = filled(batch, sizes[0])
        for k, (n_in, n_out) in enumerate(pairwise(sizes)):
            W, Z = filled(n_out, n_in), np.empty((batch, n_out), dtype)
            forward.append((X, W.T, Z))
            if train:
                D = filled(batch, n_out)
                backward.append((D.T, X, np.empty((n_out, n_in), dtype)))  # dW = D^T X
                if k > 0:
                    backward.append((D, W, np.empty((batch, n_in), dtype)))  # G = D W
            X = Z
        return cls(forward + backward[::-1], batch)

    @property
    def flops(self) -> int:
        """Floating-point operations of one step: ``2 m k n`` per (m, k) x (k, n) product."""
        return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in self.products)

    def run(self, steps: int) -> None:
        """Perform the step's products ``steps`` times."""
        products, matmul = self.products, np.matmul
        for _ in range(steps):
            for a, b, out in products:
                matmul(a, b, out=out)
