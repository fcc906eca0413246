"""The log link of scikit-learn's ``MLPRegressor(loss="poisson")``: an exponential output and
the half Poisson deviance, as a matrixprop activation and loss.

With the pair matched, the output delta is the fused ``D_L = c (A - Y)``, as for the other
canonical pairs (see :mod:`matrixprop.losses`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from ..activations import Activation
from ..losses import Loss, _weighted_sum

__all__ = ["Exp", "HalfPoissonDeviance"]


class Exp(Activation):
    """``f(z) = exp(z)``; ``f'(z) = f(z)``."""

    name = "exp"
    from_output = True

    def forward(self, Z, out):
        return np.exp(Z, out=out)

    def backward(self, G, Z, A, scratch=None):
        G *= A
        return G


class HalfPoissonDeviance(Loss):
    """``y log(y / a) - y + a`` per element, summed over the outputs of a sample.

    scikit-learn's ``"poisson"`` loss; ``dL/dA = c (1 - Y / A)`` and, after an exponential
    output, the fused ``D_L = c (A - Y)``.
    """

    name = "poisson"
    fused_output = "exp"

    def _terms_sum(self, A, Y, work, w):
        np.divide(Y, A, out=work)
        xlogy(Y, work, out=work)
        work -= Y
        work += A
        return _weighted_sum(work, None, w)

    def _gradient_core(self, A, Y, out):
        np.divide(Y, A, out=out)
        np.subtract(1.0, out, out=out)
        return out
