"""scikit-learn's training objective on a matrixprop network.

scikit-learn minimizes, for each batch, the data loss (a mean over the samples, or a weighted
mean) plus ``0.5 * alpha * ||W||^2 / n`` over all weights (not biases), where ``n`` is the number
of samples in the batch (or the sum of their weights). The network's own forward and backward
passes give the data loss and its gradient; the L2 term is added to the weight block of the flat
gradient buffer (all weights come first in it).
"""

from __future__ import annotations

import numpy as np

from ..losses import Loss
from ..network import Network

__all__ = ["Objective"]


class Objective:
    """The loss of a batch and, left in ``net.grads``, its gradient.

    Parameters
    ----------
    net : Network
        The network; its parameters are read, its gradient buffer written.
    loss : Loss
        The data loss.
    alpha : float
        scikit-learn's L2 strength.
    """

    def __init__(self, net: Network, loss: Loss, alpha: float):
        self.net, self.loss, self.alpha = net, loss, float(alpha)
        self.dropout = any(layer.dropout for layer in net.layers)
        self._scratch = np.empty(net.n_weights, net.dtype) if self.alpha else None

    def __call__(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None,
                 *, training: bool = True) -> float:
        """Forward and backward over one batch; returns its loss, L2 term included.

        ``X``, ``Y`` and ``sample_weight`` must already have the network's dtype and shapes.
        ``training`` turns dropout on.
        """
        net = self.net
        ws = net._workspace(X.shape[0])
        rng = net.rng if training and self.dropout else None
        with np.errstate(over="ignore"):  # as the network's own passes: exp(-z) -> inf is right
            net._forward(X, ws, rng)
            value = net._backward(X, Y, self.loss, ws, sample_weight, dropped=rng is not None)
        if self.alpha:
            n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
            W = net.params[: net.n_weights]
            value += 0.5 * self.alpha * float(np.dot(W, W)) / n
            np.multiply(W, self.alpha / n, out=self._scratch)
            net.grads[: net.n_weights] += self._scratch  # d/dW of the L2 term: alpha W / n
        return value
