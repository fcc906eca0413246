"""ONNX export: a network as a graph of ``Gemm`` and activation nodes.

Layer ``i`` becomes ``Gemm(x, W_i, b_i, transB=1)`` (``x W^T + b``, with ``W`` stored as (n_out,
n_in) as in matrixprop and PyTorch) followed by its activation's node; dropout is a training-time
operation and is left out. The input ``input`` is float32 of shape (batch, n_in), the output
``output`` the output layer's activations, float32 (batch, n_out). The graph is built with the
``onnx`` package's helper API (``pip install matrixprop[onnx]``), checked with its checker, and
written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import atomic_write
from .network import Network

__all__ = ["export", "to_model"]

_SIMPLE_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softplus": "Softplus",
               "exp": "Exp"}
_BASE_OPSET = 13  # Softmax over one axis
_GELU_OPSET = 20  # the first opset with Gelu (approximate="tanh")


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install "
                          "'matrixprop[onnx]'") from None
    return onnx


def _activation_node(helper, activation, source: str, target: str):
    """The node computing ``activation`` (not the identity) from ``source`` into ``target``."""
    name = activation.name
    if name in _SIMPLE_OPS:
        return helper.make_node(_SIMPLE_OPS[name], [source], [target])
    if name == "leaky_relu":
        return helper.make_node("LeakyRelu", [source], [target], alpha=activation.negative_slope)
    if name == "elu":
        return helper.make_node("Elu", [source], [target], alpha=activation.alpha)
    if name == "gelu":
        return helper.make_node("Gelu", [source], [target], approximate="tanh")
    if name == "softmax":
        return helper.make_node("Softmax", [source], [target], axis=-1)
    raise ValueError(f"ONNX export: activation {name!r} has no ONNX operator")


def to_model(net: Network):
    """The network as an ``onnx.ModelProto`` (float32 weights), checked by ``onnx.checker``."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(net, Network):
        raise TypeError(f"ONNX export needs a matrixprop Network, got {type(net).__name__}")
    nodes, initializers, current = [], [], "input"
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        identity = layer.activation.name == "identity"
        z = "output" if i == last and identity else f"z{i}"
        inputs = [current, f"W{i}"] + ([f"b{i}"] if layer.bias else [])
        initializers.append(numpy_helper.from_array(layer.W.astype(np.float32), f"W{i}"))
        if layer.bias:
            initializers.append(numpy_helper.from_array(layer.b.astype(np.float32), f"b{i}"))
        nodes.append(helper.make_node("Gemm", inputs, [z], name=f"layer{i}", transB=1))
        current = z
        if not identity:
            current = "output" if i == last else f"a{i}"
            nodes.append(_activation_node(helper, layer.activation, z, current))
    graph = helper.make_graph(
        nodes, "matrixprop",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", net.n_outputs])],
        initializer=initializers,
    )
    uses_gelu = any(layer.activation.name == "gelu" for layer in net.layers)
    opset = [helper.make_opsetid("", _GELU_OPSET if uses_gelu else _BASE_OPSET)]
    model = helper.make_model(graph, opset_imports=opset, producer_name="matrixprop",
                              ir_version=helper.find_min_ir_version_for(opset))
    onnx.checker.check_model(model, full_check=True)
    return model


def export(net: Network, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` as an ONNX model file at ``path`` (replaced atomically); return the path."""
    return atomic_write(path, to_model(net).SerializeToString())
