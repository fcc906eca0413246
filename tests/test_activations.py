"""Activations: values, derivatives, numerical stability and the in-place engine form."""

import warnings

import numpy as np
import pytest

import matrixprop as mp

NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]
EXPECTED = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(z)),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
}
Z = np.linspace(-6, 6, 97).reshape(1, -1)


@pytest.mark.parametrize("name", NAMES)
def test_values_match_the_definitions(name):
    np.testing.assert_allclose(mp.activations.get(name)(Z), EXPECTED[name](Z), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_central_differences(name):
    z = Z[:, np.abs(Z[0]) > 1e-3]  # away from relu's kink
    h = 1e-6
    f = mp.activations.get(name)
    numeric = (f(z + h) - f(z - h)) / (2 * h)
    np.testing.assert_allclose(f.derivative(z), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", [*NAMES, "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_give_no_warning_and_no_nan(name, dtype):
    z = np.array([[-1e4, -800.0, -100.0, -30.0, 0.0, 30.0, 100.0, 800.0, 1e4]], dtype=dtype)
    f = mp.activations.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, d = f(z), f.derivative(z)
    assert np.all(np.isfinite(d)) and not np.isnan(a).any()
    assert a.dtype == dtype


def test_saturated_limits_are_exact():
    z = np.array([[-1e4, 1e4]])
    np.testing.assert_array_equal(mp.activations.get("sigmoid")(z), [[0.0, 1.0]])
    np.testing.assert_array_equal(mp.activations.get("tanh")(z), [[-1.0, 1.0]])
    np.testing.assert_array_equal(mp.activations.get("softmax")(np.array([[0.0, 1e4]])),
                                  [[0.0, 1.0]])
    assert mp.activations.get("softplus")(np.array([[1e4]]))[0, 0] == 1e4


def test_softmax_backward_is_the_jacobian_vector_product():
    rng = np.random.default_rng(0)
    z, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    softmax = mp.activations.get("softmax")
    s = softmax(z)
    jacobians = [np.diag(row) - np.outer(row, row) for row in s]
    expected = np.stack([J @ gi for J, gi in zip(jacobians, g, strict=True)])
    np.testing.assert_allclose(softmax.backward(g.copy(), z.copy(), s.copy()), expected,
                               rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_backward_in_place_equals_the_readable_form(name):
    rng = np.random.default_rng(1)
    z, g = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    f = mp.activations.get(name)
    A = np.empty_like(z)
    Z = z.copy()
    A = f.forward(Z, out=Z if f.from_output else A)
    scratch = np.empty_like(z) if f.needs_scratch else None
    D = f.backward(g.copy(), Z, A, scratch)
    np.testing.assert_allclose(D, g * f.derivative(z), rtol=1e-12, atol=1e-15)


def test_parameters_and_names():
    leaky = mp.activations.get("leaky_relu", negative_slope=0.2)
    assert leaky(np.array([[-1.0]]))[0, 0] == pytest.approx(-0.2)
    elu = mp.activations.get({"name": "elu", "alpha": 2.0})
    assert elu(np.array([[-50.0]]))[0, 0] == pytest.approx(-2.0)
    assert mp.activations.get(leaky) == leaky and mp.activations.get(leaky) is not leaky
    assert mp.activations.get("logistic").name == "sigmoid"
    assert "gelu" in mp.activations.names()


def test_softmax_of_a_vector_is_one_row():
    z = np.array([1.0, 2.0, 3.0])
    s = mp.activations.get("softmax")(z)
    assert s.shape == (3,)
    np.testing.assert_allclose(s, np.exp(z) / np.exp(z).sum(), rtol=1e-14)
