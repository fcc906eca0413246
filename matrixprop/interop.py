"""PyTorch interchange: a network as a ``torch.nn.Sequential`` of ``Linear`` and activation
modules, and back.

Both sides store a layer's weight as (n_out, n_in), so weights move as they are. PyTorch is only
imported inside the two functions: the rest of matrixprop does not need it.

=====================  =====================================================
matrixprop             torch.nn
=====================  =====================================================
identity               (no module; ``Identity`` is accepted and skipped)
sigmoid, tanh, relu    ``Sigmoid``, ``Tanh``, ``ReLU``
leaky_relu             ``LeakyReLU(negative_slope)``
elu                    ``ELU(alpha)``
softplus               ``Softplus()`` (beta 1; PyTorch is linear past its threshold, 20,
                       where the two differ by less than exp(-20))
gelu                   ``GELU(approximate="tanh")``
softmax                ``Softmax(dim=-1)`` (``dim=1`` is accepted)
dropout p              ``Dropout(p)`` after the layer's activation
=====================  =====================================================
"""

from __future__ import annotations

import numpy as np

from . import activations
from .layers import Dense
from .network import Network

__all__ = ["to_torch", "from_torch"]


def _torch_activation(activation: activations.Activation, nn):
    """The torch module for a matrixprop activation (None for identity)."""
    name = activation.name
    simple = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}
    if name == "identity":
        return None
    if name in simple:
        return simple[name]()
    if name == "leaky_relu":
        return nn.LeakyReLU(activation.negative_slope)
    if name == "elu":
        return nn.ELU(activation.alpha)
    if name == "gelu":
        return nn.GELU(approximate="tanh")
    if name == "softmax":
        return nn.Softmax(dim=-1)
    raise ValueError(f"to_torch: activation {name!r} has no torch.nn module")


def to_torch(net: Network):
    """The network as a ``torch.nn.Sequential`` with the same weights and dtype.

    Parameters
    ----------
    net : Network
        The network to convert.

    Returns
    -------
    torch.nn.Sequential
        ``Linear`` modules, each followed by its activation module (none for identity) and a
        ``Dropout`` module where the layer has dropout.
    """
    import torch
    from torch import nn

    if not isinstance(net, Network):
        raise TypeError(f"to_torch needs a matrixprop Network, got {type(net).__name__}")
    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    modules = []
    for layer in net.layers:
        linear = nn.Linear(layer.n_in, layer.n_out, bias=layer.bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.W))
            if layer.bias:
                linear.bias.copy_(torch.from_numpy(layer.b))
        modules.append(linear)
        activation = _torch_activation(layer.activation, nn)
        if activation is not None:
            modules.append(activation)
        if layer.dropout:
            modules.append(nn.Dropout(layer.dropout))
    return nn.Sequential(*modules)


def _matrixprop_activation(module, nn) -> activations.Activation | None:
    """The matrixprop activation of a torch activation module, or None if it is not one."""
    simple = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu"}
    if type(module) in simple:
        return activations.get(simple[type(module)])
    if isinstance(module, nn.LeakyReLU):
        return activations.get("leaky_relu", negative_slope=module.negative_slope)
    if isinstance(module, nn.ELU):
        return activations.get("elu", alpha=module.alpha)
    if isinstance(module, nn.Softplus):
        if module.beta != 1:
            raise ValueError(f"from_torch: {module} has beta {module.beta}; only beta=1 maps to "
                             "matrixprop's softplus")
        return activations.get("softplus")
    if isinstance(module, nn.GELU):
        if module.approximate != "tanh":
            raise ValueError(f"from_torch: {module} is the exact GELU; matrixprop's gelu is "
                             "GELU(approximate='tanh')")
        return activations.get("gelu")
    if isinstance(module, nn.Softmax):
        if module.dim not in (-1, 1):
            raise ValueError(f"from_torch: {module} normalizes over dim {module.dim}; "
                             "only dim=-1 or dim=1 (over the outputs of a sample) is supported")
        return activations.get("softmax")
    return None


def from_torch(module, dtype=None) -> Network:
    """A network with the layers and weights of a ``torch.nn.Sequential``.

    Parameters
    ----------
    module : torch.nn.Sequential
        ``Linear`` modules, each optionally followed by one activation module of the table
        above and then a ``Dropout``.
    dtype : "float32", "float64" or None
        The network's dtype; None takes the first ``Linear``'s (float32 or float64).

    Returns
    -------
    Network
    """
    import torch
    from torch import nn

    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch needs a torch.nn.Sequential, got {type(module).__name__}")
    specs: list[dict] = []  # per layer: the Linear, then its activation and dropout
    for index, child in enumerate(module):
        where = f"module {index} ({child})"
        if isinstance(child, nn.Identity):
            continue
        if isinstance(child, nn.Linear):
            specs.append({"linear": child, "activation": None, "dropout": 0.0})
            continue
        if not specs:
            raise ValueError(f"from_torch: {where} comes before the first Linear")
        spec = specs[-1]
        if isinstance(child, nn.Dropout):
            if spec["dropout"]:
                raise ValueError(f"from_torch: {where} follows another Dropout")
            spec["dropout"] = float(child.p)
            continue
        activation = _matrixprop_activation(child, nn)
        if activation is None:
            raise ValueError(f"from_torch: unsupported {where}; expected Linear, Dropout or one "
                             "of ReLU, Sigmoid, Tanh, LeakyReLU, ELU, Softplus, "
                             "GELU(approximate='tanh'), Softmax(dim=-1), Identity")
        if spec["dropout"] or spec["activation"] is not None:
            raise ValueError(f"from_torch: {where}: a Linear may be followed by one activation "
                             "and then a Dropout")
        spec["activation"] = activation
    if not specs:
        raise ValueError("from_torch: the module has no Linear layer")
    if dtype is None:
        dtype = specs[0]["linear"].weight.dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"from_torch: weights of dtype {dtype}; pass dtype='float32' or "
                             "'float64' to convert them")
        dtype = "float64" if dtype == torch.float64 else "float32"
    layers = [Dense(s["linear"].in_features, s["linear"].out_features,
                    s["activation"] or "identity", bias=s["linear"].bias is not None,
                    dropout=s["dropout"]) for s in specs]
    net = Network(layers, dtype=dtype)
    for layer, spec in zip(net.layers, specs, strict=True):
        layer.W[...] = spec["linear"].weight.detach().cpu().numpy()
        if layer.bias:
            layer.b[...] = spec["linear"].bias.detach().cpu().numpy()
    return net
