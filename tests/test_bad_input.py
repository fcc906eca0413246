"""Bad input raises ValueError or TypeError with a message naming what is wrong."""

import warnings

import numpy as np
import pytest

import matrixprop as mp

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 4))
LABELS = RNG.integers(0, 3, 10)


@pytest.fixture
def net():
    return mp.MLP([4, 5, 3], "relu", "softmax", seed=0)


def with_value(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": X[:9]}, ValueError, "10"),  # mismatched rows
        ({"X": X[:, :3]}, ValueError, "3 features .* expects 4"),
        ({"X": X[0]}, ValueError, "2-D"),
        ({"X": with_value(X, (3, 1), np.nan)}, ValueError, r"X contains NaN .*\(3, 1\)"),
        ({"X": with_value(X, (0, 0), np.inf)}, ValueError, "X contains NaN or infinite"),
        ({"X": X.astype(str)}, TypeError, "X must hold numbers"),
        ({"X": [[1, 2, 3, 4], [1, 2]] + [[0] * 4] * 8}, ValueError, "rectangular"),
        ({"Y": LABELS.astype(float)}, TypeError, "labels must be integers"),
        ({"Y": np.where(LABELS == 0, 3, LABELS)}, ValueError, "label 3 is out of range"),
        ({"Y": -LABELS - 1}, ValueError, "out of range"),
        ({"Y": np.eye(4)[LABELS]}, ValueError, r"shape \(10, 3\)"),
        ({"Y": with_value(np.eye(3)[LABELS], (2, 0), np.nan)}, ValueError, "Y contains NaN"),
        ({"Y": np.full((10, 3), 0.5)}, ValueError, "sum to 1"),
        ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
        ({"loss": "binary_cross_entropy"}, ValueError, "'sigmoid' output"),
        ({"optimizer": "lion"}, ValueError, "unknown optimizer 'lion'"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be a positive integer"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"l2": -1.0}, ValueError, "l2 must be"),
        ({"sample_weight": np.ones(3)}, ValueError, r"sample_weight must have shape \(10,\)"),
        ({"sample_weight": -np.ones(10)}, ValueError, "sample_weight must be >= 0"),
        ({"validation_data": (X, LABELS + 5)}, ValueError, "out of range"),
        ({"validation_data": X}, ValueError, "validation_data must be a pair"),
        ({"seed": -1}, ValueError, "seed must be"),
    ],
)
def test_fit_rejects_bad_input(net, kwargs, error, match):
    args = {"X": X, "Y": LABELS, **kwargs}
    before = net.params.copy()
    with pytest.raises(error, match=match):
        mp.fit(net, args.pop("X"), args.pop("Y"), **args)
    np.testing.assert_array_equal(net.params, before)  # nothing was trained


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: mp.MLP([4]), ValueError, "at least an input and an output"),
        (lambda: mp.MLP([4, 0, 2]), ValueError, "n_out must be >= 1"),
        (lambda: mp.MLP([4, 2], "swish"), ValueError, "unknown activation 'swish'"),
        (lambda: mp.MLP([4, 3, 2], "softmax", "softmax"), ValueError, "only be the output"),
        (lambda: mp.MLP([4, 2], init="orthogonal"), ValueError, "unknown init 'orthogonal'"),
        (lambda: mp.MLP([4, 2], dtype="float16"), ValueError, "float32' or 'float64"),
        (lambda: mp.MLP([4, 3, 2], dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
        (lambda: mp.MLP([4, 3, 2], ["relu", "tanh"]), ValueError, "2 values for 1 hidden"),
        (lambda: mp.Network([mp.Dense(4, 3), mp.Dense(2, 1)]), ValueError, "takes 2 inputs"),
        (lambda: mp.Network([]), ValueError, "at least one layer"),
        (lambda: mp.losses.get("mse", reduction="avg"), ValueError, "unknown reduction 'avg'"),
        (lambda: mp.optimizers.Adam(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be"),
        (lambda: mp.optimizers.SGD(lr=-0.1), ValueError, "lr must be"),
        (lambda: mp.optimizers.SGD(lr=0), ValueError, "lr must be"),
        (lambda: mp.optimizers.SGD(lr=np.array([0.1, np.nan])), ValueError, "finite rates"),
        (lambda: mp.optimizers.SGD(lr=0.1, nesterov=True), ValueError, "nesterov"),
    ],
)
def test_construction_rejects_bad_arguments(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_load_state_dict_validates_before_copying(net):
    good = {k: v.copy() for k, v in net.state_dict().items()}
    before = net.params.copy()
    cases = [
        ({**good, "layers.0.weight": np.zeros((4, 5))}, ValueError, r"must have shape \(5, 4\)"),
        ({k: v for k, v in good.items() if k != "layers.1.bias"}, ValueError, "missing"),
        ({**good, "layers.2.weight": np.zeros(1)}, ValueError, "unexpected"),
        ({**good, "layers.1.bias": np.zeros(3, dtype=int)}, TypeError, "floating-point"),
        ({**good, "layers.1.bias": np.array([0, np.nan, 0])}, ValueError, "NaN"),
        ([1, 2], TypeError, "mapping"),
    ]
    for state, error, match in cases:
        # a valid entry first, so a partial copy would show
        state = {"layers.0.weight": np.ones((5, 4)), **state} if isinstance(state, dict) else state
        with pytest.raises(error, match=match):
            net.load_state_dict(state)
        np.testing.assert_array_equal(net.params, before)


def test_predict_and_gradients_reject_bad_input(net):
    with pytest.raises(ValueError, match="expects 4"):
        net.predict(np.ones((2, 5)))
    with pytest.raises(ValueError, match="no samples"):
        net.predict(np.ones((0, 4)))
    with pytest.raises(ValueError, match="X contains NaN"):
        net.loss_and_gradients(with_value(X, (1, 1), np.nan), LABELS)
    with pytest.raises(ValueError, match="'sigmoid' output"):
        mp.gradcheck(net, X, LABELS, "binary_cross_entropy")


def test_optimizer_lr_mapping_must_name_the_parameters(net):
    opt = mp.optimizers.SGD(lr={"layers.0.weight": 0.1, "layers.9.weight": 0.1})
    with pytest.raises(ValueError, match=r"unknown names \['layers.9.weight'\]"):
        mp.fit(net, X, LABELS, optimizer=opt, epochs=1)
    opt = mp.optimizers.SGD(lr={"layers.0.weight": np.ones((2, 2)), "default": 0.1})
    with pytest.raises(ValueError, match="does not broadcast"):
        mp.fit(net, X, LABELS, optimizer=opt, epochs=1)


def test_large_finite_values_are_not_mistaken_for_infinities():
    from matrixprop._validation import inputs

    X_big = np.full((10, 4), 3e38, dtype=np.float32)  # their float32 sum overflows to inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(inputs(X_big, 4, np.float32), X_big)
    X_big[9, 3] = np.inf
    with pytest.raises(ValueError, match=r"X contains NaN or infinite values \(first at index"):
        inputs(X_big, 4, np.float32)
