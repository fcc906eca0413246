"""Backpropagation against central finite differences, and the output deltas written out by hand:
the fused ``D_L = c (A - Y)`` of the matched pairs and the ``f'`` factor of sigmoid + half_sse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _torch_reference import (
    HIDDEN_ACTIVATIONS,
    LEGAL_PAIRS,
    REDUCTIONS,
    TorchTwin,
    make_problem,
    relative_error,
    torch_loss,
)

import matrixprop as mp

TOLERANCE = 1e-6
EPS = 1e-5  # 1e-6 leaves rounding errors near 5e-7 in deep sigmoid nets
MATCHED_PAIRS = [
    ("identity", "half_sse"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
]


def _depth(hidden: str, output: str, reduction: str) -> int:
    """A sample of depths 2-4 spread over the grid (depth 1 has no hidden activation)."""
    key = HIDDEN_ACTIVATIONS.index(hidden) + len(output) + REDUCTIONS.index(reduction)
    return 2 + key % 3


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("output", "loss"), LEGAL_PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_gradcheck_every_combination(hidden, output, loss, reduction):
    net, X, Y = make_problem(hidden, output, loss, _depth(hidden, output, reduction))
    result = mp.gradcheck(net, X, Y, mp.losses.get(loss, reduction), eps=EPS,
                          tolerance=TOLERANCE)
    assert result.ok, str(result)
    assert result.checked == net.params.size
    assert set(result.relative_errors) == set(net.state_dict())


@pytest.mark.parametrize(("output", "loss"), LEGAL_PAIRS)
def test_gradcheck_with_sample_weights(output, loss):
    net, X, Y = make_problem("elu", output, loss, 3)
    weights = np.linspace(0.0, 2.0, X.shape[0])
    result = mp.gradcheck(net, X, Y, mp.losses.get(loss, "mean"), sample_weight=weights)
    assert result.ok, str(result)


def torch_finite_differences(net: mp.Network, X, Y, loss: str, reduction: str):
    """Central differences of the loss computed by the PyTorch twin, one weight at a time."""
    model = TorchTwin(net)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    numeric = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat, grad = p.view(-1), np.empty(p.numel())
            for i in range(p.numel()):
                original = flat[i].item()
                flat[i] = original + EPS
                plus = torch_loss(model(Xt), Yt, loss, reduction).item()
                flat[i] = original - EPS
                minus = torch_loss(model(Xt), Yt, loss, reduction).item()
                flat[i] = original
                grad[i] = (plus - minus) / (2 * EPS)
            numeric[name] = grad.reshape(p.shape)
    return numeric


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("output", "loss"), LEGAL_PAIRS)
def test_backprop_matches_independent_finite_differences(output, loss, reduction):
    net, X, Y = make_problem("softplus", output, loss, 3)
    _, ours = net.loss_and_gradients(X, Y, mp.losses.get(loss, reduction))
    numeric = torch_finite_differences(net, X, Y, loss, reduction)
    for name, grad in numeric.items():
        assert relative_error(ours[name], grad) <= TOLERANCE, name


def test_gradcheck_detects_a_wrong_derivative(monkeypatch):
    net, X, Y = make_problem("tanh", "identity", "mse", 2)
    assert mp.gradcheck(net, X, Y, "mse").ok
    monkeypatch.setattr(mp.activations.Tanh, "backward", lambda self, G, Z, A, scratch=None: G)
    result = mp.gradcheck(net, X, Y, "mse")
    assert not result.ok
    assert result.relative_errors["layers.0.weight"] > 1e-2
    assert result.relative_errors["layers.1.weight"] <= TOLERANCE  # the output layer is right


def _scale(loss: str, reduction: str, weights: np.ndarray, n_outputs: int) -> float:
    """The reduction's constant c, written out per loss."""
    if reduction == "sum":
        return 1.0
    per_element = loss == "binary_cross_entropy" and reduction == "mean"
    return 1.0 / (weights.sum() * (n_outputs if per_element else 1))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("output", "loss"), MATCHED_PAIRS)
def test_matched_pairs_have_the_fused_delta(output, loss, reduction, weighted):
    """With inputs X = I a single layer's dL/dW = D_L^T X = D_L^T: the engine's delta itself."""
    n_out = 3
    net, _, _ = make_problem("tanh", output, loss, 1, n_outputs=n_out)
    n_in = net.n_inputs
    X = np.eye(n_in)
    Y = make_problem("tanh", output, loss, 1, n=n_in, n_outputs=n_out, seed=9)[2]
    weights = np.linspace(0.5, 2.0, n_in) if weighted else np.ones(n_in)
    loss_fn = mp.losses.get(loss, reduction)
    _, grads = net.loss_and_gradients(X, Y, loss_fn, sample_weight=weights if weighted else None)
    A = net.predict(X)
    expected = _scale(loss, reduction, weights, n_out) * (A - Y) * weights[:, None]
    np.testing.assert_allclose(grads["layers.0.weight"].T, expected, rtol=1e-13, atol=0)
    np.testing.assert_allclose(grads["layers.0.bias"], expected.sum(axis=0), rtol=1e-12, atol=0)
    # the loss module's own fused delta, on the same outputs
    Z = X @ net.state_dict()["layers.0.weight"].T + net.state_dict()["layers.0.bias"]
    out = np.empty_like(A)
    _, delta = loss_fn.value_and_delta(A.copy(), Y, Z, net.output_activation, out,
                                       weights if weighted else None)
    np.testing.assert_allclose(delta, expected, rtol=1e-13, atol=0)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sigmoid_half_sse_keeps_the_derivative_factor(reduction):
    """The article's network, one sample: dL/dW_3 = [(a - y) * f'(z)] a_prev^T, not the norm."""
    net = mp.MLP([2, 3, 2], activation="sigmoid", seed=4, dtype="float64")
    x, y = np.array([0.35, 0.9]), np.array([0.5, 0.1])
    state = net.state_dict()
    a_prev = _sigmoid(state["layers.0.weight"] @ x + state["layers.0.bias"])
    z = state["layers.1.weight"] @ a_prev + state["layers.1.bias"]
    a = _sigmoid(z)
    delta = (a - y) * a * (1.0 - a)  # (a - y) * f'(z), a column per the article
    _, grads = net.loss_and_gradients(x[None, :], y[None, :], mp.losses.get("half_sse", reduction))
    np.testing.assert_allclose(grads["layers.1.weight"], np.outer(delta, a_prev), rtol=1e-13)
    np.testing.assert_allclose(grads["layers.1.bias"], delta, rtol=1e-13)
    without_factor = np.outer(a - y, a_prev)
    norm_form = np.linalg.norm(a - y) * np.tile(a_prev, (2, 1))
    for wrong in (without_factor, norm_form):
        assert relative_error(grads["layers.1.weight"], wrong) > 0.5
