"""Initializers draw from the distributions their names promise."""

import numpy as np
import pytest

import matrixprop as mp
from matrixprop.initializers import initialize

N_IN, N_OUT = 400, 300

# name -> (expected weight std, biases ~ N(0, 1)?)
EXPECTED = {
    "glorot_uniform": (np.sqrt(2 / (N_IN + N_OUT)), False),
    "xavier_normal": (np.sqrt(2 / (N_IN + N_OUT)), False),
    "he_uniform": (np.sqrt(2 / N_IN), False),
    "kaiming_normal": (np.sqrt(2 / N_IN), False),
    "lecun_uniform": (np.sqrt(1 / N_IN), False),
    "lecun_normal": (np.sqrt(1 / N_IN), False),
    "normal": (1.0, True),
    "normal_scaled": (np.sqrt(1 / N_IN), True),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_weight_spread_and_biases(name):
    W, b = np.empty((N_OUT, N_IN)), np.empty(N_OUT)
    initialize(name, W, b, np.random.default_rng(0))
    std, normal_biases = EXPECTED[name]
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 0.01 * std + 1e-3
    if normal_biases:
        assert b.std() == pytest.approx(1.0, rel=0.15)
    else:
        assert not b.any()


def test_uniform_schemes_stay_within_their_limit():
    W = np.empty((N_OUT, N_IN))
    initialize("glorot_uniform", W, None, np.random.default_rng(0))
    assert np.abs(W).max() <= np.sqrt(6 / (N_IN + N_OUT))


def test_auto_picks_he_for_relu_and_glorot_otherwise():
    relu = mp.MLP([N_IN, N_OUT, 2], "relu", seed=0).layers[0].W
    tanh = mp.MLP([N_IN, N_OUT, 2], "tanh", seed=0).layers[0].W
    assert relu.std() == pytest.approx(np.sqrt(2 / N_IN), rel=0.02)
    assert tanh.std() == pytest.approx(np.sqrt(2 / (N_IN + N_OUT)), rel=0.02)
