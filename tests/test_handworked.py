"""The article's two-input sigmoid neuron, worked by hand: exact numbers for one forward pass,
one backward pass and one update step.

    z = w1 x1 + w2 x2 + b = 0.5 * 1 - 0.25 * 2 + 0.1 = 0.1
    a = sigmoid(0.1)                         = 0.52497918747894
    C = 1/2 (a - y)^2 with y = 1            = 0.11282238616408401
    dC/dz = (a - y) sigmoid'(z) = (a - y) a (1 - a) = -0.11845880923571206   (backward pass)
    dC/dw1 = dC/dz * x1,  dC/dw2 = dC/dz * x2      (forward pass: dz/dw = the input)
    one SGD step with alpha = 0.5: w <- w - alpha dC/dw
"""

import numpy as np
import pytest

import matrixprop as mp

X = np.array([[1.0, 2.0]])
Y = np.array([[1.0]])


@pytest.fixture
def neuron():
    net = mp.Network([mp.Dense(2, 1, "sigmoid")], dtype="float64")
    net.load_state_dict({"layers.0.weight": [[0.5, -0.25]], "layers.0.bias": [0.1]})
    return net


def test_forward_pass(neuron):
    assert neuron.predict(X)[0, 0] == pytest.approx(0.52497918747894, rel=1e-14)
    assert neuron.loss(X, Y, "half_sse") == pytest.approx(0.11282238616408401, rel=1e-14)


def test_backward_pass_is_dz_dw_times_dc_dz(neuron):
    loss, grads = neuron.loss_and_gradients(X, Y, "half_sse")
    dc_dz = -0.11845880923571206
    assert loss == pytest.approx(0.11282238616408401, rel=1e-14)
    np.testing.assert_allclose(grads["layers.0.weight"], [[dc_dz * 1.0, dc_dz * 2.0]], rtol=1e-14)
    np.testing.assert_allclose(grads["layers.0.bias"], [dc_dz], rtol=1e-14)


def test_one_update_step(neuron):
    mp.fit(neuron, X, Y, loss="half_sse", optimizer=mp.optimizers.SGD(lr=0.5), batch_size=1,
           epochs=1, shuffle=False)
    state = neuron.state_dict()
    np.testing.assert_allclose(state["layers.0.weight"], [[0.5592294046178561,
                                                           -0.13154119076428794]], rtol=1e-14)
    np.testing.assert_allclose(state["layers.0.bias"], [0.15922940461785604], rtol=1e-14)


def test_the_article_norm_is_wrong_the_vector_is_right():
    """The article writes ||x3 - y|| for the output factor; the right one is (x3 - y) * f'(z3).

    With two outputs of opposite errors the norm form gets the sign of one gradient wrong.
    """
    net = mp.Network([mp.Dense(2, 2, "sigmoid")], dtype="float64")
    W = np.array([[0.3, -0.2], [0.1, 0.4]])
    b = np.array([0.05, -0.05])
    net.load_state_dict({"layers.0.weight": W, "layers.0.bias": b})
    x, y = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]])
    _, grads = net.loss_and_gradients(x, y, "half_sse")
    z = W @ x[0] + b
    a = 1 / (1 + np.exp(-z))
    vector = (a - y[0]) * a * (1 - a)
    np.testing.assert_allclose(grads["layers.0.weight"], np.outer(vector, x[0]), rtol=1e-13)
    norm_form = np.linalg.norm(a - y[0]) * np.outer(a * (1 - a), x[0])
    assert not np.allclose(grads["layers.0.weight"], norm_form)
    assert np.sign(grads["layers.0.weight"][0, 0]) != np.sign(norm_form[0, 0])
