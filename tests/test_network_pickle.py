"""Pickling and deep-copying a network keeps its layers bound to the flat parameter buffer."""

import copy
import io
import pickle

import joblib
import numpy as np
import pytest

import matrixprop as mp


@pytest.mark.parametrize("duplicate", [lambda n: pickle.loads(pickle.dumps(n)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_copy_keeps_layers_bound_to_the_buffer(duplicate):
    net = mp.MLP([3, 5, 2], "relu", "softmax", seed=0, dtype="float64")
    X = np.random.default_rng(1).normal(size=(7, 3))
    expected = net.predict(X)
    clone = duplicate(net)
    np.testing.assert_array_equal(clone.predict(X), expected)
    for layer in clone.layers:
        assert np.shares_memory(layer.W, clone.params)
        assert np.shares_memory(layer.dW, clone.grads)
    clone.params[...] = 0.0  # a change of the buffer must reach the layers
    np.testing.assert_allclose(clone.predict(X), 0.5)
    np.testing.assert_array_equal(net.predict(X), expected)  # the original is untouched


def test_training_after_unpickling_moves_the_predictions():
    net = mp.MLP([2, 4, 1], "tanh", "identity", seed=0, dtype="float64")
    X = np.random.default_rng(2).normal(size=(16, 2))
    y = X[:, :1] - X[:, 1:]
    clone = pickle.loads(pickle.dumps(net))
    before = clone.loss(X, y, "mse")
    mp.fit(clone, X, y, loss="mse", optimizer=mp.optimizers.SGD(lr=0.1), epochs=5, seed=0)
    assert clone.loss(X, y, "mse") < before


def test_joblib_keeps_an_optimizer_attached_to_its_network():
    net = mp.MLP([2, 3, 1], "tanh", "identity", seed=0, dtype="float64")
    optimizer = mp.optimizers.Adam(lr=0.1)
    optimizer.setup(net)
    buffer = io.BytesIO()
    joblib.dump((net, optimizer), buffer)  # joblib does not keep shared arrays shared
    buffer.seek(0)
    net2, optimizer2 = joblib.load(buffer)
    assert optimizer2._params is net2.params and optimizer2._grads is net2.grads
    X, y = np.ones((4, 2)), np.zeros((4, 1))
    before = net2.predict(X)
    net2.loss_and_gradients(X, y, "mse")
    optimizer2.step()
    assert not np.array_equal(net2.predict(X), before)  # the step reached the network
