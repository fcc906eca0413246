"""The neuron view: the article's scalar chain rule for one neuron, with the network's numbers.

For neuron ``j`` of a hidden layer ``k`` the backward pass gives::

    dC/dz = f'(z) * sum_i w_i dC/dz_i

where the sum runs over the neurons ``i`` of layer ``k+1`` that it feeds, ``w_i = W_{k+1}[i, j]``
and ``dC/dz_i = delta_{k+1}[i]``. It is entry ``j`` of the matrix form
``delta_k = f'(z_k) * (W_{k+1}^T delta_{k+1})``. The forward pass gives ``dz/dw = a_{k-1}`` for
the neuron's incoming weights, so ``dC/dW_k[j, :] = dC/dz * a_{k-1}``: row ``j`` of ``dL/dW_k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NeuronView", "neuron_view"]


@dataclass
class NeuronView:
    """One neuron's chain rule (layer and index counted from 1, as displayed).

    ``weights`` and ``downstream`` are None for an output neuron, whose ``dC/dz`` comes from the
    loss directly (``delta_L``).
    """

    layer: int
    index: int
    activation: str
    z: float
    f_prime: float | None  # f'(z) (None for a softmax output: its Jacobian mixes neurons)
    weights: np.ndarray | None  # W_{k+1}[:, j]: the weights out of this neuron
    downstream: np.ndarray | None  # delta_{k+1}: dC/dz of the neurons it feeds
    delta: float  # dC/dz by the scalar chain rule
    matrix_delta: float  # entry j of the matrix form's delta_k
    inputs: np.ndarray  # a_{k-1} = dz/dw for the incoming weights
    matrix_weight_gradient: np.ndarray  # row j of dL/dW_k

    @property
    def is_output(self) -> bool:
        return self.weights is None

    @property
    def terms(self) -> np.ndarray | None:
        """``w_i dC/dz_i`` for every neuron ``i`` fed."""
        return None if self.weights is None else self.weights * self.downstream

    @property
    def weight_gradient(self) -> np.ndarray:
        """``dC/dw = dC/dz * dz/dw = dC/dz * a_{k-1}`` for the incoming weights."""
        return self.delta * self.inputs

    def agrees(self, rtol: float = 1e-9) -> bool:
        """Whether the scalar chain rule equals the matrix form (delta and the weight row)."""
        scale = max(abs(self.matrix_delta), np.finfo(np.float64).tiny)
        return bool(abs(self.delta - self.matrix_delta) <= rtol * scale
                    and np.allclose(self.weight_gradient, self.matrix_weight_gradient,
                                    rtol=rtol, atol=rtol * scale))

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        def plain(array):
            return None if array is None else np.asarray(array, dtype=float).tolist()

        return {
            "layer": self.layer, "index": self.index, "activation": self.activation,
            "z": self.z, "f_prime": self.f_prime, "weights": plain(self.weights),
            "downstream_deltas": plain(self.downstream), "terms": plain(self.terms),
            "delta": self.delta, "matrix_delta": self.matrix_delta, "inputs": plain(self.inputs),
            "weight_gradient": plain(self.weight_gradient),
            "matrix_weight_gradient": plain(self.matrix_weight_gradient),
            "agrees": self.agrees(),
        }


def neuron_view(explanation, layer: int, index: int) -> NeuronView:
    """Build the :class:`NeuronView` of neuron ``index`` in layer ``layer`` (both from 1)."""
    steps = explanation.layers
    _check_position(layer, len(steps), "layer")
    step = steps[layer - 1]
    _check_position(index, step.z.size, f"neuron of layer {layer}")
    j = index - 1
    inputs = explanation.x if layer == 1 else steps[layer - 2].a
    if layer == len(steps):
        weights = downstream = None
        f_prime = None if step.f_prime.ndim == 2 else float(step.f_prime[j])
        delta = float(step.delta[j])  # from the loss: see delta_L
    else:
        following = steps[layer]
        weights, downstream = following.W[:, j], following.delta
        f_prime = float(step.f_prime[j])
        delta = f_prime * float(np.dot(weights, downstream))  # the article's scalar form
    return NeuronView(
        layer=layer, index=index, activation=step.activation, z=float(step.z[j]),
        f_prime=f_prime, weights=weights, downstream=downstream, delta=delta,
        matrix_delta=float(step.delta[j]), inputs=inputs, matrix_weight_gradient=step.dW[j],
    )


def _check_position(value, count: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer counted from 1, got {value!r}")
    if not 1 <= value <= count:
        raise ValueError(f"{name} must be in [1, {count}], got {value}")
