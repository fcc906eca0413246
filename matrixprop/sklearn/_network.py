"""The network behind an estimator, initialized as scikit-learn initializes its MLP.

scikit-learn draws each layer's weights and then its biases from ``U(-r, r)`` with
``r = sqrt(k / (fan_in + fan_out))``, ``k = 2`` for logistic activations and 6 otherwise, from
the estimator's ``random_state``. Drawing them in the same order from the same state gives the
same starting point, so both libraries train the same model.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..network import MLP, Network

__all__ = ["build_network"]


def _bound_factor(activation) -> float:
    return 2.0 if activations.get(activation).name == "sigmoid" else 6.0


def build_network(layer_units: list[int], activation, output_activation, dropout, dtype,
                  rs: np.random.RandomState) -> Network:
    """An MLP of ``layer_units`` with scikit-learn's initial weights drawn from ``rs``.

    ``activation`` is one hidden activation or a list of one per hidden layer; ``dropout`` one
    rate or a list. With dropout, the network's generator (its masks) is seeded from ``rs``
    after the weights are drawn.
    """
    n_hidden = len(layer_units) - 2
    hidden = list(activation) if isinstance(activation, (list, tuple)) else [activation] * n_hidden
    net = MLP(layer_units, activation=hidden, output_activation=output_activation,
              dtype=dtype, dropout=dropout)
    last = hidden[-1] if hidden else activation if isinstance(activation, str) else "relu"
    for layer, name in zip(net.layers, [*hidden, last], strict=True):
        bound = np.sqrt(_bound_factor(name) / (layer.n_in + layer.n_out))
        layer.W[...] = rs.uniform(-bound, bound, (layer.n_in, layer.n_out)).T
        layer.b[...] = rs.uniform(-bound, bound, layer.n_out)
    if any(layer.dropout for layer in net.layers):
        net.rng = np.random.default_rng(rs.randint(np.iinfo(np.int32).max))
    return net
