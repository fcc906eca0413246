"""Backpropagation against PyTorch autograd in float64: every activation, legal output/loss pair,
reduction and depth 1-4, with and without sample weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _torch_reference import (
    HIDDEN_ACTIVATIONS,
    ILLEGAL_PAIRS,
    LEGAL_PAIRS,
    REDUCTIONS,
    TorchTwin,
    make_problem,
    relative_error,
    torch_loss,
    torch_loss_and_gradients,
)

import matrixprop as mp

TOLERANCE = 1e-10
DEPTHS = (1, 2, 3, 4)


def assert_matches_torch(net, X, Y, loss, reduction, sample_weight=None):
    ours_loss, ours = net.loss_and_gradients(
        X, Y, mp.losses.get(loss, reduction), sample_weight=sample_weight
    )
    ref_loss, ref = torch_loss_and_gradients(net, X, Y, loss, reduction, sample_weight)
    assert list(ours) == list(ref)
    assert abs(ours_loss - ref_loss) <= TOLERANCE * abs(ref_loss)
    for name in ref:
        assert ours[name].shape == ref[name].shape
        error = relative_error(ours[name], ref[name])
        assert error <= TOLERANCE, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("output", "loss"), LEGAL_PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_gradients_match_autograd(hidden, output, loss, reduction):
    for depth in DEPTHS:
        net, X, Y = make_problem(hidden, output, loss, depth, seed=depth,
                                 away_from_kinks=False)
        assert_matches_torch(net, X, Y, loss, reduction)
        weights = np.random.default_rng(depth).uniform(0.2, 3.0, size=X.shape[0])
        weights[1] = 0.0  # a zero weight takes its sample out of the loss
        assert_matches_torch(net, X, Y, loss, reduction, sample_weight=weights)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_integer_labels_match_torch_cross_entropy(hidden, reduction):
    net, X, _ = make_problem(hidden, "softmax", "cross_entropy", 3, n_outputs=4)
    labels = np.array([0, 3, 1, 2, 3, 0, 1])
    ours_loss, ours = net.loss_and_gradients(X, labels, mp.losses.get("cross_entropy", reduction))
    model = TorchTwin(net)
    zs, _ = model.pre_activations(torch.tensor(X))
    # torch's own cross-entropy on the logits, independent of our softmax-then-log reference
    torch_reduction = "mean" if reduction == "batchmean" else reduction
    value = torch.nn.functional.cross_entropy(zs[-1], torch.tensor(labels),
                                              reduction=torch_reduction)
    value.backward()
    assert abs(ours_loss - value.item()) <= TOLERANCE * abs(value.item())
    for name, p in model.named_parameters():
        assert relative_error(ours[name], p.grad.numpy()) <= TOLERANCE, name


@pytest.mark.parametrize(
    ("loss", "module"),
    [("mse", torch.nn.MSELoss), ("binary_cross_entropy", torch.nn.BCELoss)],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reference_losses_agree_with_torch_modules(loss, module, reduction):
    """The test's loss definitions reduce exactly like PyTorch's elementwise loss modules."""
    rng = np.random.default_rng(3)
    A = torch.tensor(rng.uniform(0.05, 0.95, size=(7, 3)))
    Y = torch.tensor(rng.uniform(0.0, 1.0, size=(7, 3)))
    expected = module(reduction=reduction)(A, Y).item()
    assert torch_loss(A, Y, loss, reduction).item() == pytest.approx(expected, rel=1e-14)
    assert mp.losses.get(loss, reduction)(A.numpy(), Y.numpy()) == pytest.approx(expected,
                                                                                 rel=1e-12)


@pytest.mark.parametrize(
    ("output", "loss", "per_element"),
    [("sigmoid", "half_sse", False), ("softmax", "cross_entropy", False),
     ("sigmoid", "mse", True), ("sigmoid", "binary_cross_entropy", True)],
)
def test_batchmean_differs_from_mean_only_for_elementwise_losses(output, loss, per_element):
    net, X, Y = make_problem("tanh", output, loss, 2)
    mean = net.loss(X, Y, mp.losses.get(loss, "mean"))
    batchmean = net.loss(X, Y, mp.losses.get(loss, "batchmean"))
    factor = net.n_outputs if per_element else 1
    assert batchmean == pytest.approx(mean * factor, rel=1e-14)


@pytest.mark.parametrize(("output", "loss"), ILLEGAL_PAIRS)
def test_illegal_pairs_are_refused_naming_the_pair(output, loss):
    net, X, _ = make_problem("tanh", output, "mse", 2)
    Y = np.full((X.shape[0], net.n_outputs), 1.0 / net.n_outputs)
    for call in (
        lambda: net.loss_and_gradients(X, Y, loss),
        lambda: net.loss(X, Y, loss),
        lambda: mp.gradcheck(net, X, Y, loss),
        lambda: mp.fit(net, X, Y, loss=loss, optimizer=mp.optimizers.SGD(lr=0.1), epochs=1),
    ):
        with pytest.raises(ValueError, match=f"{loss}.*{output}"):
            call()


def test_softmax_in_a_hidden_layer_is_refused():
    with pytest.raises(ValueError, match="softmax.*output"):
        mp.MLP([3, 4, 2], activation="softmax", output_activation="identity")
    with pytest.raises(ValueError, match="softmax.*output"):
        mp.Network([mp.Dense(3, 4, "softmax"), mp.Dense(4, 2, "sigmoid")])
