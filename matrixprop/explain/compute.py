"""The numbers of one forward and backward pass on one sample: what :func:`explain` returns.

Layers are numbered as in the article, from 1: layer ``k`` has ``W_k`` (``layers.{k-1}.weight``
in the code), its input is ``a_{k-1}`` and ``a_0 = x``. Vectors are the article's column
vectors, stored as 1-D arrays.

Every number comes from the engine, run on a float64 copy of the network: ``z`` and ``a`` from
the layers' own forward pass, the loss and the gradients from ``net.loss_and_gradients``, the
deltas from the losses' and activations' backward rules, the update from :class:`~matrixprop.
optimizers.SGD`. Central finite differences stand beside every gradient as an independent check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .. import _validation as check
from .. import losses as losses_module
from .. import optimizers
from .._trace import layer_values
from ..gradcheck import _central_difference
from ..network import Network
from .markdown import render_markdown
from .neuron import NeuronView, neuron_view
from .text import render_text

__all__ = ["Explanation", "LayerStep", "explain", "random_sample"]


@dataclass
class LayerStep:
    """The numbers of layer ``number`` (from 1) for one sample.

    Attributes
    ----------
    W, b : weights (n_out, n_in) and biases (n_out,) before the update (``b`` None without bias).
    z, a : ``z = W a_prev + b`` and ``a = f(z)``.
    upstream : ``dL/da``: ``W_next^T delta_next`` for a hidden layer, the loss's gradient for the
        output layer.
    f_prime : ``f'(z)``; for a softmax output the Jacobian ``diag(s) - s s^T`` (n_out, n_out).
    delta : ``dL/dz``.
    dW, db : ``dL/dW = delta a_prev^T`` and ``dL/db = delta``, by backpropagation.
    dW_numeric, db_numeric : the same by central finite differences (NaN where not checked).
    W_updated, b_updated : the parameters after one step ``w - lr dL/dw``.
    """

    number: int
    activation: str
    W: np.ndarray
    b: np.ndarray | None
    z: np.ndarray
    a: np.ndarray
    upstream: np.ndarray
    f_prime: np.ndarray
    delta: np.ndarray
    dW: np.ndarray
    db: np.ndarray | None
    dW_numeric: np.ndarray
    db_numeric: np.ndarray | None
    W_updated: np.ndarray
    b_updated: np.ndarray | None

    def fd_errors(self) -> dict[str, float]:
        """Worst ``|backprop - numeric| / max|numeric|`` over the checked entries of W and b."""
        pairs = {"W": (self.dW, self.dW_numeric), "b": (self.db, self.db_numeric)}
        return {name: _relative_error(*pair) for name, pair in pairs.items()
                if pair[0] is not None and not np.isnan(pair[1]).all()}

    def fd_coverage(self) -> tuple[int, int]:
        """How many entries of W and b the finite differences checked, out of how many."""
        arrays = [a for a in (self.dW_numeric, self.db_numeric) if a is not None]
        return (sum(int(np.count_nonzero(~np.isnan(a))) for a in arrays),
                sum(a.size for a in arrays))


@dataclass
class Explanation:
    """A worked forward and backward pass; see :func:`explain`.

    Render it with :meth:`to_text`, :meth:`to_markdown` (a notebook shows it as markdown),
    :meth:`to_dict` or :meth:`to_json`; :meth:`neuron_view` gives the article's scalar chain
    rule for one neuron.
    """

    sizes: list[int]
    loss_name: str
    reduction: str
    loss_scale: float  # c in L = c * sum of the terms, for this one sample
    delta_rule: str  # "fused", "jacobian" (softmax) or "elementwise"
    lr: float
    x: np.ndarray
    y: np.ndarray
    loss: float
    loss_after: float
    layers: list[LayerStep]
    neuron: tuple[int, int] | None = None  # the neuron shown by the renderers

    def neuron_view(self, layer: int, index: int) -> NeuronView:
        """The article's chain rule for neuron ``index`` of layer ``layer`` (both from 1)."""
        return neuron_view(self, layer, index)

    # -- formats ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Everything as plain data (nested lists, never summarized; NaN becomes None)."""
        view = None if self.neuron is None else self.neuron_view(*self.neuron).to_dict()
        return {
            "network": {"sizes": list(self.sizes),
                        "activations": [step.activation for step in self.layers]},
            "loss_name": self.loss_name,
            "reduction": self.reduction,
            "lr": self.lr,
            "x": _plain(self.x),
            "y": _plain(self.y),
            "loss": self.loss,
            "loss_after_update": self.loss_after,
            "layers": [_layer_dict(step) for step in self.layers],
            "neuron": view,
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_text(self, width: int = 100, max_entries: int = 24) -> str:
        """Plain text for a terminal, ``width`` columns; larger arrays are summarized."""
        return render_text(self, width=width, max_entries=max_entries)

    def to_markdown(self, max_entries: int = 24) -> str:
        """Markdown with LaTeX math (GitHub, Jupyter); larger arrays are summarized."""
        return render_markdown(self, max_entries=max_entries)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()


def explain(
    net: Network,
    x,
    y,
    loss=None,
    *,
    lr: float = 0.5,
    neuron: tuple[int, int] | None = (1, 1),
    finite_differences: int | None = 256,
    eps: float = 1e-6,
    seed: int = 0,
) -> Explanation:
    """Work one forward and backward pass through ``net`` on one sample, with every number.

    Parameters
    ----------
    net : Network
        The network (not modified; the work is done on a float64 copy, without dropout).
    x : array (n_inputs,)
        One input sample.
    y : array (n_outputs,) or int
        Its target, or its class label for a network with several outputs.
    loss : str or Loss
        Default: ``cross_entropy`` after a softmax output, else the article's ``half_sse``.
    lr : float
        The learning rate ``alpha`` of the one update ``w - alpha dL/dw`` that is shown.
    neuron : (layer, index) or None
        The neuron whose scalar chain rule the renderers show, both counted from 1 (the
        article's numbering); None shows none.
    finite_differences : int or None
        At most this many entries per parameter are checked by central differences (chosen at
        random with ``seed``); None checks all.
    eps : float
        Step of the central differences.

    Returns
    -------
    Explanation
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a matrixprop Network, got {type(net).__name__}")
    net = net.astype(np.float64)
    loss = losses_module.get(loss if loss is not None else _article_loss(net))
    loss.check_output(net.output_activation)
    X, Y = _one_sample(net, x, y, loss)
    values = layer_values(net, X)
    value, grads = net.loss_and_gradients(X, Y, loss, training=False)
    upstream, deltas = _backward(net, values, Y, loss)
    numeric = _finite_differences(net, X, Y, loss, finite_differences, eps, seed)
    updated, loss_after = _sgd_step(net, X, Y, loss, lr)
    steps = []
    for k, (layer, (Z, A)) in enumerate(zip(net.layers, values, strict=True)):
        weight, bias = f"layers.{k}.weight", f"layers.{k}.bias"
        steps.append(LayerStep(
            number=k + 1, activation=layer.activation.name,
            W=layer.W.copy(), b=None if layer.b is None else layer.b.copy(),
            z=Z[0], a=A[0], upstream=upstream[k][0], f_prime=_f_prime(layer.activation, Z[0], A[0]),
            delta=deltas[k][0], dW=grads[weight], db=grads.get(bias),
            dW_numeric=numeric[weight], db_numeric=numeric.get(bias),
            W_updated=updated[weight], b_updated=updated.get(bias),
        ))
    rule = ("fused" if net.output_activation.name == loss.fused_output
            else "jacobian" if net.output_activation.name == "softmax" else "elementwise")
    explanation = Explanation(
        sizes=net.sizes, loss_name=loss.name, reduction=loss.reduction,
        loss_scale=loss.scale(1, net.n_outputs), delta_rule=rule, lr=float(lr),
        x=X[0], y=Y[0], loss=value, loss_after=loss_after, layers=steps,
    )
    if neuron is not None:
        explanation.neuron_view(*neuron)  # fail now on a neuron that does not exist
        explanation.neuron = tuple(neuron)
    return explanation


def random_sample(net: Network, loss=None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small made-up sample ``(x, y)`` for ``net``, with round numbers that read well.

    Inputs are drawn from U(-1, 1); targets fit the loss: a one-hot row for cross-entropy,
    0/1 values for binary cross-entropy, values in (0, 1) otherwise. Two decimals each.
    """
    loss = losses_module.get(loss if loss is not None else _article_loss(net))
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-1, 1, net.n_inputs), 2)
    if isinstance(loss, losses_module.CrossEntropy):
        y = np.eye(net.n_outputs)[rng.integers(net.n_outputs)]
    elif isinstance(loss, losses_module.BinaryCrossEntropy):
        y = rng.integers(0, 2, net.n_outputs).astype(np.float64)
    else:
        y = np.round(rng.uniform(0.05, 0.95, net.n_outputs), 2)
    return x, y


# -- the computations ----------------------------------------------------------------------
def _article_loss(net: Network) -> str:
    return "cross_entropy" if net.output_activation.name == "softmax" else "half_sse"


def _one_sample(net: Network, x, y, loss) -> tuple[np.ndarray, np.ndarray]:
    X = check.inputs(np.atleast_2d(np.asarray(x)), net.n_inputs, net.dtype, name="x")
    if X.shape[0] != 1:
        raise ValueError(f"explain takes one sample, but x has shape {np.shape(x)}")
    Y = np.asarray(y)
    Y = Y.reshape(1) if Y.ndim <= 1 and Y.size == 1 else np.atleast_2d(Y)
    return X, check.targets(Y, 1, net.n_outputs, loss, net.dtype)


def _scratch(activation, like: np.ndarray) -> np.ndarray | None:
    return np.empty_like(like) if activation.needs_scratch else None


def _backward(net: Network, values, Y, loss) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``dL/da_k`` and ``delta_k = dL/dz_k`` of every layer, by the engine's backward rules."""
    n = len(net.layers)
    upstream: list[np.ndarray] = [np.empty(0)] * n
    deltas: list[np.ndarray] = [np.empty(0)] * n
    Z, A = values[-1]
    out = net.output_activation
    upstream[-1] = loss.gradient(A, Y)  # dL/da_L
    _, deltas[-1] = loss.value_and_delta(A.copy(), Y, Z.copy(), out, np.empty_like(A),
                                         scratch=_scratch(out, A))
    for k in range(n - 1, 0, -1):
        Z, A = values[k - 1]
        activation = net.layers[k - 1].activation
        upstream[k - 1] = deltas[k] @ net.layers[k].W  # W_{k+1}^T delta_{k+1}, as a row
        deltas[k - 1] = activation.backward(upstream[k - 1].copy(), Z.copy(), A.copy(),
                                            _scratch(activation, Z))
    return upstream, deltas


def _f_prime(activation, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``f'(z)``; for softmax (``a = s``), whose Jacobian is not diagonal, the Jacobian."""
    if activation.name == "softmax":
        return np.diag(a) - np.outer(a, a)
    return activation.derivative(z)


def _finite_differences(net, X, Y, loss, limit, eps, seed) -> dict[str, np.ndarray]:
    """Central differences of the loss for (a random subset of) every parameter's entries."""
    rng = np.random.default_rng(seed)
    shapes = {name: array.shape for name, array in net.state_dict().items()}
    numeric = {}
    for name, where in net.parameter_slices().items():
        values = np.full(where.stop - where.start, np.nan)
        chosen = np.arange(values.size)
        if limit is not None and values.size > limit:
            chosen = np.sort(rng.choice(values.size, size=limit, replace=False))
        for i in chosen:
            values[i] = _central_difference(net, where.start + i, X, Y, loss, None, eps)
        numeric[name] = values.reshape(shapes[name])
    return numeric


def _sgd_step(net: Network, X, Y, loss, lr) -> tuple[dict[str, np.ndarray], float]:
    """One plain gradient step (the article's update) on a copy: new parameters, new loss."""
    stepped = net.copy()
    stepped.grads[...] = net.grads
    optimizer = optimizers.SGD(lr=lr)
    optimizer.setup(stepped)
    optimizer.step()
    state = {name: array.copy() for name, array in stepped.state_dict().items()}
    return state, stepped.loss(X, Y, loss)


def _relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    checked = ~np.isnan(numeric)
    diff = np.max(np.abs(analytic[checked] - numeric[checked]))
    return float(diff / max(np.max(np.abs(numeric[checked])), np.finfo(np.float64).tiny))


# -- plain data ----------------------------------------------------------------------------
def _plain(array: np.ndarray | None):
    """Nested lists of floats, NaN as None."""
    if array is None:
        return None
    array = np.asarray(array, dtype=np.float64)
    return np.where(np.isnan(array), None, array).tolist()


def _layer_dict(step: LayerStep) -> dict:
    keys = ("W", "b", "z", "a", "delta", "dW", "db", "upstream", "f_prime", "dW_numeric",
            "db_numeric", "W_updated", "b_updated")
    data = {"layer": step.number, "activation": step.activation}
    data.update({key: _plain(getattr(step, key)) for key in keys})
    data["dL_da"] = data.pop("upstream")
    data["fd_relative_error"] = step.fd_errors()
    return data
