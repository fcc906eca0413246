"""``mp.fit`` step for step against ``torch.optim`` in float64: every optimizer, per-weight
learning rates (frozen weights stay bitwise unchanged), the book's L2 term, and schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _torch_reference import TorchTwin, make_problem, relative_error, torch_loss

import matrixprop as mp

TOLERANCE = 1e-10
N, BATCH, EPOCHS = 13, 5, 5  # three batches per epoch, the last one partial
LOSS = ("cross_entropy", "mean")

OPTIMIZERS = {
    "sgd": ("SGD", {"lr": 0.3}),
    "sgd_momentum": ("SGD", {"lr": 0.1, "momentum": 0.9}),
    "sgd_dampening": ("SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3}),
    "sgd_nesterov": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "sgd_weight_decay": ("SGD", {"lr": 0.2, "momentum": 0.5, "weight_decay": 0.05}),
    "adam": ("Adam", {"lr": 0.02}),
    "adam_weight_decay": ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    "adamw": ("AdamW", {"lr": 0.02, "weight_decay": 0.1}),
    "adagrad": ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1}),
    "rmsprop": ("RMSprop", {"lr": 0.01}),
    "rmsprop_momentum": ("RMSprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.9}),
    "rmsprop_centered": ("RMSprop", {"lr": 0.01, "centered": True, "weight_decay": 0.01}),
}


def problem(seed: int = 0):
    """A [4, 5, 3] tanh/softmax network and 13 samples with integer labels."""
    net, X, _ = make_problem("tanh", "softmax", "cross_entropy", 2, n=N, seed=seed)
    labels = np.random.default_rng(seed).integers(0, net.n_outputs, size=N)
    return net, X, labels


def torch_fit(net, X, labels, make_optimizer, *, epochs=EPOCHS, make_scheduler=None,
              lr_arrays=None):
    """Train the PyTorch twin of ``net`` in the same batches; return its parameters and the
    learning rate of every epoch.

    ``lr_arrays`` (name -> array) scales each step's change of that parameter elementwise:
    with an optimizer built with ``lr=1`` this is the step of a per-weight learning rate.
    """
    model = TorchTwin(net)
    optimizer = make_optimizer(model)
    scheduler = None if make_scheduler is None else make_scheduler(optimizer)
    X, Y = torch.tensor(X), torch.eye(net.n_outputs, dtype=torch.float64)[labels]
    params = dict(model.named_parameters())
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        for start in range(0, len(X), BATCH):
            before = {name: p.detach().clone() for name, p in params.items()}
            optimizer.zero_grad()
            torch_loss(model(X[start:start + BATCH]), Y[start:start + BATCH], *LOSS).backward()
            optimizer.step()
            with torch.no_grad():
                for name, rate in (lr_arrays or {}).items():
                    p = params[name]
                    p.copy_(before[name] + torch.tensor(rate) * (p - before[name]))
        if scheduler is not None:
            scheduler.step()
    return model.numpy_state(), rates


def fit(net, X, labels, optimizer, **kwargs):
    kwargs = {"batch_size": BATCH, "epochs": EPOCHS, "shuffle": False, **kwargs}
    return mp.fit(net, X, labels, loss=mp.losses.get(*LOSS), optimizer=optimizer, **kwargs)


def assert_same_parameters(net, reference):
    ours = net.state_dict()
    assert list(ours) == list(reference)
    for name, value in reference.items():
        error = relative_error(ours[name], value)
        assert error <= TOLERANCE, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("case", list(OPTIMIZERS))
def test_fit_follows_torch_optim(case):
    cls, kwargs = OPTIMIZERS[case]
    net, X, labels = problem()
    start = net.params.copy()
    reference, _ = torch_fit(net, X, labels,
                             lambda m: getattr(torch.optim, cls)(m.parameters(), **kwargs))
    fit(net, X, labels, getattr(mp.optimizers, cls)(**kwargs))
    assert relative_error(net.params, start) > 1e-3  # training moved the weights
    assert_same_parameters(net, reference)


PER_LAYER_RATES = {
    "layers.0.weight": 0.2,
    "layers.0.bias": 0.0,  # frozen
    "layers.1.weight": 0.05,
    "layers.1.bias": 0.1,
}


@pytest.mark.parametrize("case", ["sgd_momentum", "adam", "adamw", "rmsprop_centered"])
def test_per_layer_rates_match_torch_param_groups(case):
    cls, kwargs = OPTIMIZERS[case]
    net, X, labels = problem()
    frozen = net.state_dict()["layers.0.bias"].copy()

    def make_optimizer(model):
        groups = [{"params": [p], "lr": PER_LAYER_RATES[name]}
                  for name, p in model.named_parameters()]
        return getattr(torch.optim, cls)(groups, **kwargs)

    reference, _ = torch_fit(net, X, labels, make_optimizer)
    fit(net, X, labels, getattr(mp.optimizers, cls)(**{**kwargs, "lr": PER_LAYER_RATES}))
    assert np.array_equal(net.state_dict()["layers.0.bias"], frozen)
    assert_same_parameters(net, reference)


def test_default_entry_fills_the_other_rates():
    net, X, labels = problem()
    twin = net.copy()
    fit(net, X, labels, mp.optimizers.SGD(lr={"layers.1.weight": 0.05, "default": 0.2}))
    rates = {name: 0.05 if name == "layers.1.weight" else 0.2 for name in net.state_dict()}
    fit(twin, X, labels, mp.optimizers.SGD(lr=rates))
    np.testing.assert_array_equal(net.params, twin.params)


def _array_rates(net) -> dict[str, np.ndarray]:
    """Per-weight rates for each parameter, with some zeros."""
    rng = np.random.default_rng(5)
    rates = {}
    for name, value in net.state_dict().items():
        rate = rng.uniform(0.01, 0.3, size=value.shape)
        rate[rng.random(size=value.shape) < 0.3] = 0.0
        rates[name] = rate
    return rates


@pytest.mark.parametrize("form", ["mapping", "flat"])
@pytest.mark.parametrize("case", ["sgd_weight_decay", "adam", "adamw", "adagrad",
                                  "rmsprop_momentum"])
def test_per_weight_rates_freeze_exactly_the_zeros(case, form):
    cls, kwargs = OPTIMIZERS[case]
    net, X, labels = problem()
    rates = _array_rates(net)
    rates["layers.1.bias"] = np.float64(0.1)  # a mapping may mix scalars and arrays
    if form == "mapping":
        rates["layers.0.weight"] = np.array([[0.1], [0.0], [0.2], [0.1], [0.05]])  # per neuron
        lr = dict(rates)
    else:
        lr = np.empty(net.params.size)
        for name, where in net.parameter_slices().items():
            lr[where] = np.broadcast_to(rates[name], net.state_dict()[name].shape).reshape(-1)
    start = {name: value.copy() for name, value in net.state_dict().items()}
    unit_rate = {**kwargs, "lr": 1.0}
    reference, _ = torch_fit(
        net, X, labels, lambda m: getattr(torch.optim, cls)(m.parameters(), **unit_rate),
        lr_arrays={name: np.broadcast_to(rate, start[name].shape) for name, rate in rates.items()},
    )
    fit(net, X, labels, getattr(mp.optimizers, cls)(**{**kwargs, "lr": lr}))
    n_frozen = 0
    for name, value in net.state_dict().items():
        zero = np.broadcast_to(rates[name], value.shape) == 0
        n_frozen += int(zero.sum())
        assert np.array_equal(value[zero], start[name][zero]), name
        assert np.all(value[~zero] != start[name][~zero]), name
    assert n_frozen > 5
    assert_same_parameters(net, reference)


def test_l2_is_the_books_form_by_hand():
    """Each step: W <- W - lr (dL/dW + lam/n W) on weights, b <- b - lr dL/db on biases."""
    lr, lam = 0.3, 0.8
    net, X, labels = problem()
    expected = net.copy()
    loss = mp.losses.get(*LOSS)
    for _ in range(2):
        for start in range(0, N, BATCH):
            _, grads = expected.loss_and_gradients(X[start:start + BATCH],
                                                   labels[start:start + BATCH], loss)
            state = expected.state_dict()
            for name, g in grads.items():
                decay = lam / N * state[name] if name.endswith("weight") else 0.0
                state[name] -= lr * (g + decay)
    fit(net, X, labels, mp.optimizers.SGD(lr=lr), l2=lam, epochs=2)
    np.testing.assert_allclose(net.params, expected.params, rtol=1e-13, atol=1e-15)
    plain = problem()[0]
    fit(plain, X, labels, mp.optimizers.SGD(lr=lr), epochs=2)
    assert relative_error(plain.params, net.params) > 1e-3  # the term made a difference


@pytest.mark.parametrize("case", ["sgd_momentum", "adam"])
def test_l2_equals_torch_weight_decay_on_weights_only(case):
    lam = 0.5
    cls, kwargs = OPTIMIZERS[case]
    net, X, labels = problem()

    def make_optimizer(model):
        groups = [{"params": [p], "weight_decay": lam / N if name.endswith("weight") else 0.0}
                  for name, p in model.named_parameters()]
        return getattr(torch.optim, cls)(groups, **kwargs)

    reference, _ = torch_fit(net, X, labels, make_optimizer)
    fit(net, X, labels, getattr(mp.optimizers, cls)(**kwargs), l2=lam)
    assert_same_parameters(net, reference)


SCHEDULES = {
    "step": (mp.schedules.StepLR(step_size=2, gamma=0.5),
             lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)),
    "exponential": (mp.schedules.ExponentialLR(gamma=0.7),
                    lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.7)),
    "cosine": (mp.schedules.CosineAnnealingLR(T_max=4, min_factor=0.0),
               lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0)),
}


@pytest.mark.parametrize("case", ["sgd_nesterov", "adam"])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_schedules_follow_torch_lr_scheduler(schedule, case):
    ours, make_scheduler = SCHEDULES[schedule]
    cls, kwargs = OPTIMIZERS[case]
    net, X, labels = problem()
    reference, rates = torch_fit(
        net, X, labels, lambda m: getattr(torch.optim, cls)(m.parameters(), **kwargs),
        make_scheduler=make_scheduler,
    )
    history = fit(net, X, labels, getattr(mp.optimizers, cls)(**kwargs), schedule=ours)
    assert len(set(rates)) > 2  # the rate really changed over the epochs
    np.testing.assert_allclose(history["lr"], rates, rtol=1e-12, atol=1e-300)
    assert_same_parameters(net, reference)


# -- bad input -------------------------------------------------------------------------------
OPTIMIZER_CLASSES = [mp.optimizers.SGD, mp.optimizers.Adam, mp.optimizers.AdamW,
                     mp.optimizers.Adagrad, mp.optimizers.RMSprop]


@pytest.mark.parametrize("cls", OPTIMIZER_CLASSES)
@pytest.mark.parametrize("lr", [0, 0.0, -0.1, math.nan, math.inf, -math.inf])
def test_non_positive_or_non_finite_lr_is_refused(cls, lr):
    with pytest.raises(ValueError, match="lr"):
        cls(lr=lr)


@pytest.mark.parametrize("cls", OPTIMIZER_CLASSES)
@pytest.mark.parametrize("lr", ["fast", True, [0.1, "x"], None])
def test_lr_of_the_wrong_type_is_refused(cls, lr):
    with pytest.raises(TypeError, match="lr"):
        cls(lr=lr)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_lr_arrays_with_negative_or_non_finite_rates_are_refused(bad):
    net = problem()[0]
    flat = np.full(net.params.size, 0.1)
    flat[3] = bad
    with pytest.raises(ValueError, match="lr"):
        mp.optimizers.SGD(lr=flat)
    with pytest.raises(ValueError, match=r"lr\['layers.0.weight'\]"):
        mp.optimizers.Adam(lr={"layers.0.weight": np.array([0.1, bad]), "default": 0.1})


@pytest.mark.parametrize(
    ("lr", "message"),
    [
        ({**PER_LAYER_RATES, "layers.9.weight": 0.1}, r"lr mapping.*unknown.*layers\.9\.weight"),
        ({"layers.0.weight": 0.1, "layers.1.weight": 0.1}, r"lr mapping.*missing.*layers\.0\.bias"),
        ({"layers.0.weight": np.ones(7), "default": 0.1}, r"lr\['layers\.0\.weight'\].*broadcast"),
        (np.full(10, 0.1), "lr array"),
    ],
)
def test_lr_that_does_not_fit_the_network_is_refused(lr, message):
    net, X, labels = problem()
    start = net.params.copy()
    with pytest.raises(ValueError, match=message):
        mp.optimizers.SGD(lr=lr).setup(net)
    with pytest.raises(ValueError, match=message):
        fit(net, X, labels, mp.optimizers.Adam(lr=lr))
    np.testing.assert_array_equal(net.params, start)  # nothing trained


@pytest.mark.parametrize("cls", [mp.optimizers.Adam, mp.optimizers.AdamW])
@pytest.mark.parametrize(
    ("betas", "error"),
    [
        ((1.0, 0.999), ValueError),
        ((0.9, 1.0), ValueError),
        ((-0.1, 0.999), ValueError),
        ((0.9, math.nan), ValueError),
        ((0.9,), ValueError),
        (0.9, ValueError),
        (("a", 0.999), TypeError),
    ],
)
def test_betas_out_of_range_are_refused(cls, betas, error):
    with pytest.raises(error, match="betas"):
        cls(betas=betas)


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (mp.optimizers.SGD, {"momentum": -0.5}, "momentum"),
        (mp.optimizers.SGD, {"weight_decay": -1.0}, "weight_decay"),
        (mp.optimizers.SGD, {"nesterov": True}, "nesterov"),
        (mp.optimizers.RMSprop, {"alpha": 1.5}, "alpha"),
        (mp.optimizers.Adam, {"eps": -1e-8}, "eps"),
        (mp.optimizers.Adagrad, {"lr_decay": math.nan}, "lr_decay"),
    ],
)
def test_other_bad_hyper_parameters_are_refused(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)
