"""Every shipped component runs on both engines, and they compute the same numbers.

The lists come from the registries, so a new activation, loss or optimizer enters these tests
by being registered: it fails them until it has both its NumPy form and its compiled rule
(``accelerate=True`` refuses, or the engines differ by more than 1e-10 relative in float64).
The loss the engines report is PyTorch's value from the logits, also where the outputs
saturate.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matrixprop as mp

RNG = np.random.default_rng(7)
X = RNG.normal(size=(23, 5))
LABELS = RNG.integers(0, 3, 23)
WEIGHTS = RNG.uniform(0.2, 2.0, 23)
HIDDEN = [cls.name for cls in mp.activations.classes() if not cls.output_only]
OUTPUTS = [cls.name for cls in mp.activations.classes()]
PAIRS = [(output, loss) for loss in mp.losses.names() for output in OUTPUTS
         if mp.losses.get(loss).required_output in (None, output)]
OPTIMIZERS = {
    **{name: (lambda name=name: mp.optimizers.get(name, lr=0.02)) for name in
       mp.optimizers.names()},
    "sgd-momentum": lambda: mp.optimizers.SGD(lr=0.02, momentum=0.9, dampening=0.1,
                                              weight_decay=1e-3),
    "sgd-nesterov": lambda: mp.optimizers.SGD(lr=0.02, momentum=0.9, nesterov=True),
    "rmsprop-centered-momentum": lambda: mp.optimizers.RMSprop(lr=0.01, momentum=0.5,
                                                               centered=True),
    "adagrad-decay": lambda: mp.optimizers.Adagrad(lr=0.05, lr_decay=0.01),
}
REGULARIZERS = {
    "none": {},
    "l2": {"l2": 0.3},
    "clip": {"clip_grad_norm": 0.2},
    "weights": {"sample_weight": WEIGHTS},
    "schedule": {"schedule": mp.schedules.StepLR(step_size=1, gamma=0.5)},
}


def _targets(output: str, loss: str):
    if loss == "cross_entropy":
        return LABELS
    if output == "softmax" or loss == "binary_cross_entropy":
        return np.eye(3)[LABELS]
    return RNG.normal(size=(23, 3)) * 0.5


TARGETS = {pair: _targets(*pair) for pair in PAIRS}


def test_the_lists_hold_every_registered_component():
    assert "silu" in HIDDEN and len(HIDDEN) == len(mp.activations.names()) - 1
    assert {loss for _, loss in PAIRS} == set(mp.losses.names())
    assert set(mp.optimizers.names()) <= set(OPTIMIZERS)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_engines_agree_on_every_optimizer_and_regularizer(hidden, output, loss):
    mismatches = []
    for optimizer_name, make_optimizer in OPTIMIZERS.items():
        for regularizer, options in REGULARIZERS.items():
            runs = []
            for accelerate in (False, True):
                net = mp.MLP([5, 4, 3], hidden, output, seed=3, dtype="float64")
                history = mp.fit(net, X, TARGETS[output, loss], loss=loss,
                                 optimizer=make_optimizer(), batch_size=6, epochs=2, seed=1,
                                 accelerate=accelerate, **options)
                runs.append((net.params.copy(), history["loss"], history.engine))
            (numpy_params, numpy_loss, numpy_engine), (params, losses, engine) = runs
            assert (numpy_engine, engine) == ("numpy", "compiled")
            error = np.max(np.abs(params - numpy_params)) / np.max(np.abs(numpy_params))
            loss_error = np.max(np.abs(np.subtract(losses, numpy_loss)) / np.abs(numpy_loss))
            if not (error <= 1e-10 and loss_error <= 1e-10):
                mismatches.append((optimizer_name, regularizer, error, loss_error))
    assert mismatches == []


def _torch_loss(Z: np.ndarray, labels: np.ndarray, loss: str) -> float:
    Z = torch.tensor(Z)
    if loss == "cross_entropy":
        return F.cross_entropy(Z, torch.tensor(labels)).item()
    return F.binary_cross_entropy_with_logits(Z, torch.tensor(np.eye(3)[labels])).item()


@pytest.mark.parametrize("scale", [30.0, 300.0])
@pytest.mark.parametrize(("output", "loss"), [("softmax", "cross_entropy"),
                                              ("sigmoid", "binary_cross_entropy")])
def test_the_reported_loss_is_pytorchs_from_the_logits_when_outputs_saturate(output, loss,
                                                                            scale):
    """Weights scaled so that outputs are confidently wrong: probabilities round to 0 and 1,
    and only the logits give the value. Every engine and every way of asking reports it."""
    def make():
        net = mp.MLP([5, 3], output, seed=0, dtype="float64")
        net.params *= scale
        return net

    net = make()
    Z = X @ net.layers[0].W.T + net.layers[0].b
    expected = _torch_loss(Z, LABELS, loss)
    assert np.isfinite(expected) and expected > 10
    Y = LABELS if loss == "cross_entropy" else np.eye(3)[LABELS]
    reported = {
        "loss_and_gradients": net.loss_and_gradients(X, Y, loss)[0],
        "loss": net.loss(X, Y, loss),
    }
    for accelerate in (False, True):  # one epoch of one batch: its loss is the start's
        history = mp.fit(make(), X, Y, loss=loss, optimizer=mp.optimizers.SGD(lr=1e-9),
                         batch_size=None, epochs=1, accelerate=accelerate)
        reported[history.engine] = history["loss"][0]
        validated = mp.fit(make(), X, Y, loss=loss, optimizer=mp.optimizers.SGD(lr=1e-30),
                           batch_size=None, epochs=1, accelerate=accelerate,
                           validation_data=(X, Y))
        reported[f"{history.engine} validation"] = validated["val_loss"][0]
    for way, value in reported.items():
        assert value == pytest.approx(expected, rel=1e-10), way


def test_a_subclass_of_a_registered_component_keeps_to_the_numpy_engine():
    """Its NumPy form may differ from its parent's compiled rule: "auto" runs it in NumPy,
    True says why not."""
    class SteeperTanh(mp.activations.Tanh):
        def forward(self, Z, out):
            return super().forward(2.0 * Z, out)

    net = mp.Network([mp.Dense(5, 4, SteeperTanh()), mp.Dense(4, 3, "softmax")], seed=0)
    assert mp.fit(net, X, LABELS, epochs=1).engine == "numpy"
    with pytest.raises(ValueError, match="activation 'tanh' has no compiled form"):
        mp.fit(net, X, LABELS, epochs=1, accelerate=True)

    class Halved(mp.losses.HalfSSE):
        pass

    net = mp.MLP([5, 4, 3], "tanh", "identity", seed=0)
    with pytest.raises(ValueError, match="loss 'half_sse' .Halved. has no compiled form"):
        mp.fit(net, X, np.eye(3)[LABELS], loss=Halved(), epochs=1, accelerate=True)
