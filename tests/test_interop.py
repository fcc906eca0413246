"""PyTorch interchange: to_torch and from_torch."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import matrixprop as mp

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", {"name": "leaky_relu", "negative_slope": 0.2},
               {"name": "elu", "alpha": 0.7}, "softplus", "gelu"]
X = np.random.default_rng(0).normal(size=(32, 5))


@pytest.mark.parametrize("output", ["softmax", "identity", "sigmoid"])
@pytest.mark.parametrize("hidden", ACTIVATIONS)
def test_round_trip_predicts_identically(hidden, output):
    net = mp.MLP([5, 7, 6, 3], hidden, output, seed=0, dtype="float64")
    module = to_torch_checked(net)
    with torch.no_grad():
        torch_out = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(torch_out, net.predict(X), rtol=0, atol=1e-12)
    back = mp.from_torch(module)
    assert back.dtype == np.float64
    assert [layer.activation for layer in back.layers] == [layer.activation for layer in net.layers]
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=0, atol=1e-12)


def to_torch_checked(net):
    module = mp.to_torch(net)
    assert isinstance(module, nn.Sequential)
    linears = [m for m in module if isinstance(m, nn.Linear)]
    assert len(linears) == len(net.layers)
    for linear, layer in zip(linears, net.layers, strict=True):
        np.testing.assert_array_equal(linear.weight.detach().numpy(), layer.W)
    return module


def test_dropout_bias_and_float32_carry_over():
    layers = [mp.Dense(5, 4, "relu", dropout=0.25), mp.Dense(4, 2, "tanh", bias=False)]
    net = mp.Network(layers, seed=0, dtype="float32")
    module = mp.to_torch(net)
    assert [type(m).__name__ for m in module] == ["Linear", "ReLU", "Dropout", "Linear", "Tanh"]
    assert module[0].weight.dtype == torch.float32 and module[3].bias is None
    back = mp.from_torch(module)
    assert back.dtype == np.float32
    assert back.layers[0].dropout == 0.25 and not back.layers[1].bias
    np.testing.assert_array_equal(back.params, net.params)


def test_from_torch_reads_a_hand_built_module():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 8), nn.Identity(), nn.GELU(approximate="tanh"),
                           nn.Linear(8, 3), nn.Softmax(dim=1)).double()
    net = mp.from_torch(module)
    assert [layer.activation.name for layer in net.layers] == ["gelu", "softmax"]
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(net.predict(X), expected, rtol=0, atol=1e-12)
    assert mp.from_torch(module, dtype="float32").dtype == np.float32


@pytest.mark.parametrize(("module", "message"), [
    (nn.Sequential(nn.Linear(3, 2), nn.Conv1d(1, 1, 1)), r"unsupported module 1 \(Conv1d"),
    (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "comes before the first Linear"),
    (nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Tanh()), "one activation and then a Dropout"),
    (nn.Sequential(nn.Linear(3, 2), nn.GELU()), "exact GELU"),
    (nn.Sequential(nn.Linear(3, 2), nn.Softplus(beta=2.0)), "only beta=1"),
    (nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0)), "only dim=-1 or dim=1"),
    (nn.Sequential(nn.Linear(3, 2).half()), "dtype torch.float16"),
    (nn.Sequential(), "no Linear layer"),
])
def test_from_torch_names_what_it_cannot_convert(module, message):
    with pytest.raises(ValueError, match=message):
        mp.from_torch(module)


def test_type_errors():
    with pytest.raises(TypeError, match="torch.nn.Sequential"):
        mp.from_torch(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="matrixprop Network"):
        mp.to_torch(nn.Linear(3, 2))


def test_importing_matrixprop_does_not_import_torch():
    code = "import sys, matrixprop; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
