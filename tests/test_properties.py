"""Property tests: batch independence, shapes and dtypes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import matrixprop as mp

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]
OUTPUT = [*HIDDEN, "softmax"]

networks = st.builds(
    lambda sizes, act, out, seed, dtype: mp.MLP(sizes, act, out, seed=seed, dtype=dtype),
    sizes=st.lists(st.integers(1, 12), min_size=2, max_size=5),
    act=st.sampled_from(HIDDEN),
    out=st.sampled_from(OUTPUT),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(["float32", "float64"]),
)


@settings(max_examples=60, deadline=None)
@given(net=networks, n=st.integers(1, 40), data=st.data())
def test_a_prediction_does_not_depend_on_its_batch(net, n, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    X = rng.normal(size=(n, net.n_inputs)).astype(net.dtype)
    whole = net.predict(X)
    row = data.draw(st.integers(0, n - 1))
    alone = net.predict(X[row:row + 1])
    chunked = net.predict(X, batch_size=data.draw(st.integers(1, n)))
    rtol, atol = (1e-5, 1e-6) if net.dtype == np.float32 else (1e-12, 1e-14)
    np.testing.assert_allclose(alone[0], whole[row], rtol=rtol, atol=atol)
    np.testing.assert_allclose(chunked, whole, rtol=rtol, atol=atol)


@settings(max_examples=40, deadline=None)
@given(net=networks, n=st.integers(1, 30), input_dtype=st.sampled_from(["float32", "float64"]))
def test_shapes_and_dtypes_are_preserved(net, n, input_dtype):
    X = np.random.default_rng(0).normal(size=(n, net.n_inputs)).astype(input_dtype)
    out = net.predict(X)
    assert out.shape == (n, net.n_outputs)
    assert out.dtype == net.dtype
    assert np.all(np.isfinite(out))
    if net.output_activation.name == "softmax":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(net=networks, n=st.integers(1, 20))
def test_gradients_have_the_parameters_shapes_and_dtype(net, n):
    X = np.random.default_rng(1).normal(size=(n, net.n_inputs)).astype(net.dtype)
    Y = np.random.default_rng(2).random((n, net.n_outputs)).astype(net.dtype)
    loss, grads = net.loss_and_gradients(X, Y, "half_sse")
    state = net.state_dict()
    assert list(grads) == list(state)
    for name, grad in grads.items():
        assert grad.shape == state[name].shape
        assert grad.dtype == net.dtype
        assert not np.shares_memory(grad, net.grads)
    assert np.isfinite(loss)


def test_float32_in_float32_out_through_training():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    net = mp.MLP([5, 8, 3], "relu", "softmax", seed=0)
    history = mp.fit(net, X, y, epochs=2, seed=0)
    assert net.params.dtype == np.float32 and net.grads.dtype == np.float32
    assert net.predict(X).dtype == np.float32
    assert all(np.isfinite(history["loss"]))


def test_state_dict_is_a_view_and_gradients_are_fresh():
    net = mp.MLP([3, 4, 2], seed=0)
    state = net.state_dict()
    state["layers.0.weight"][0, 0] = 42.0
    assert net.params[0] == 42.0
    X, Y = np.ones((2, 3)), np.zeros((2, 2))
    _, first = net.loss_and_gradients(X, Y, "mse")
    snapshot = {k: v.copy() for k, v in first.items()}
    net.loss_and_gradients(2 * X, Y + 1, "mse")
    for name in snapshot:
        np.testing.assert_array_equal(first[name], snapshot[name])


def test_same_seed_same_result():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    runs = []
    for _ in range(2):
        net = mp.MLP([4, 6, 2], "tanh", "softmax", seed=7, dropout=0.2)
        mp.fit(net, X, y, epochs=3, batch_size=8, seed=11)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = mp.MLP([4, 6, 2], "tanh", "softmax", seed=8)
    assert not np.array_equal(runs[0], other.params)
