"""The numbers behind one neuron for one sample, from :func:`matrixprop.explain`.

Layers and neurons are counted from 1, as in the article: layer ``k`` has ``W_k``
(``layers.{k-1}.weight``), its input is ``a_{k-1}`` and ``a_0 = x``. ``explain`` works one
forward and backward pass through a float64 copy of the network with the engine's own code and
gives the article's scalar chain rule of a hidden neuron beside the matrix form::

    delta_j = f'(z_j) * sum_i W_{k+1}[i, j] delta_{k+1, i}      (entry j of delta_k)
    dL/dW_k[j, i] = delta_j * a_{k-1, i}                         (row j of delta_k a_{k-1}^T)

For an output neuron the scalar rule is added here from the same numbers: the loss's derivative
times the activation's, ``delta_j = dL/da_j * f'(z_j)``, or through the softmax's Jacobian
``delta_j = sum_m dL/da_m * da_m/dz_j``; it must agree with the engine's fused or matrix delta.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..explain import explain
from ..network import Network

__all__ = ["neuron_numbers"]


def neuron_numbers(net: Network, loss, x, y, layer: int, neuron: int, alpha: float,
                   weight: int | None = None) -> dict:
    """The forward and backward numbers of one neuron for the sample ``(x, y)``.

    Parameters
    ----------
    net : Network
        The network (not modified).
    loss : str or Loss
        The loss being trained.
    x : array (n_inputs,)
        The sample.
    y : float, int or array
        Its target (a class label for a network with several outputs).
    layer, neuron : int
        Which neuron, both counted from 1.
    alpha : float
        The learning rate of this layer's weights in the update ``w - alpha dL/dw``.
    weight : int or None
        An incoming weight (counted from 1: ``W_k[neuron, weight]``) to single out.

    Returns
    -------
    dict
        The neuron view of :meth:`matrixprop.explain.Explanation.neuron_view` as plain data
        (``z``, ``f_prime``, ``weights``, ``downstream_deltas``, ``terms``, ``delta`` by the
        scalar chain rule, ``matrix_delta``, ``inputs``, ``weight_gradient``,
        ``matrix_weight_gradient``, ``agrees``), and ``a``, ``loss``, ``output``, ``alpha``,
        ``W_row``, ``W_updated``, ``b``, ``b_updated``; ``dL_da`` for an output neuron
        (``softmax_column`` after a softmax); ``edge`` when ``weight`` is given.
    """
    if isinstance(weight, bool) or not (weight is None or isinstance(weight, int)):
        raise ValueError(f"weight must be a whole number counted from 1, got {weight!r}")
    explanation = explain(net, x, y, loss=loss, lr=alpha, neuron=(layer, neuron),
                          finite_differences=0)
    view = explanation.neuron_view(layer, neuron)
    step, j = explanation.layers[layer - 1], neuron - 1
    extra = {}
    if view.is_output:
        extra = _output_chain_rule(step, j)
        view = dataclasses.replace(view, delta=extra.pop("delta"))
    numbers = view.to_dict()
    numbers.update(extra)
    numbers.update(
        a=float(step.a[j]), loss=explanation.loss, output=explanation.layers[-1].a.tolist(),
        alpha=float(alpha), W_row=step.W[j].tolist(), W_updated=step.W_updated[j].tolist(),
        b=float(step.b[j]), b_updated=float(step.b_updated[j]),
    )
    if weight is not None:
        if not 1 <= weight <= view.inputs.size:
            raise ValueError(f"weight must be in [1, {view.inputs.size}], got {weight}")
        i = weight - 1
        numbers["edge"] = {
            "input": weight, "w": float(step.W[j, i]), "a_in": float(view.inputs[i]),
            "gradient": float(view.weight_gradient[i]),
            "matrix_gradient": float(view.matrix_weight_gradient[i]),
            "w_updated": float(step.W_updated[j, i]),
        }
    return numbers


def _output_chain_rule(step, j: int) -> dict:
    """``delta_j`` of an output neuron by the scalar chain rule, with its factors."""
    dL_da = step.upstream
    if step.f_prime.ndim == 2:  # softmax: da_m/dz_j is column j of the Jacobian
        column = step.f_prime[:, j]
        terms = dL_da * column
        return {"dL_da": dL_da.tolist(), "softmax_column": column.tolist(),
                "terms": terms.tolist(), "delta": float(np.sum(terms))}
    f_prime = float(step.f_prime[j])
    return {"dL_da": dL_da.tolist(), "f_prime": f_prime, "delta": float(dL_da[j]) * f_prime}
