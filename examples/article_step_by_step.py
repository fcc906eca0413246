"""Backpropagation in matrix form, step by step, with real numbers.

Each step computes one idea of the matrix-form derivation by hand, in NumPy, with the
article's column vectors (``x_k = f(W_k x_{k-1} + b_k)``), and checks it against matrixprop's
engine. Run it:

    python examples/article_step_by_step.py              # prints every step
    python examples/article_step_by_step.py --markdown explanation.md

It exits with an error if any hand computation disagrees with the engine.
"""

from __future__ import annotations

import argparse

import numpy as np

import matrixprop as mp


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1.0 - sigmoid(z))


def column(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def show(title: str, **values) -> None:
    print(f"\n== {title}")
    for name, value in values.items():
        head = f"   {name} = "
        print(head + np.array2string(np.asarray(value), precision=5, prefix=head))


def step_one_neuron() -> None:
    """A neuron z = w1 x1 + w2 x2 + b, a = sigmoid(z): the forward pass gives dz/dw = x."""
    x, w, b = np.array([0.6, -0.2]), np.array([0.4, 0.7]), 0.1
    z = w @ x + b
    eps = 1e-6
    dz_dw = [((w + eps * np.eye(2)[i]) @ x + b - z) / eps for i in range(2)]
    show("1. one neuron: z = w1 x1 + w2 x2 + b; dz/dw_i is the input x_i",
         z=z, a=sigmoid(z), dz_dw_by_perturbation=dz_dw, x=x)
    np.testing.assert_allclose(dz_dw, x, rtol=1e-6)


def step_neuron_chain_rule(net, x, y) -> None:
    """dC/dz = sigma'(z) [w3 dC/dz' + w4 dC/dz'']: a hidden neuron feeding two neurons."""
    explanation = mp.explain(net, x, y, "half_sse")
    view = explanation.neuron_view(1, 1)
    W2 = net.state_dict()["layers.1.weight"].astype(np.float64)
    w3, w4 = W2[0, 0], W2[1, 0]
    dC_dz1, dC_dz2 = explanation.layers[1].delta  # dC/dz' and dC/dz'' of the neurons it feeds
    by_hand = sigmoid_prime(explanation.layers[0].z[0]) * (w3 * dC_dz1 + w4 * dC_dz2)
    show("2. the chain rule for hidden neuron 1: dC/dz = sigma'(z) [w3 dC/dz' + w4 dC/dz'']",
         w3_w4=[w3, w4], dC_dz_fed=[dC_dz1, dC_dz2], dC_dz_by_hand=by_hand,
         dC_dz_engine=view.matrix_delta)
    np.testing.assert_allclose(by_hand, view.matrix_delta, rtol=1e-12)


def forward_by_hand(net, x0):
    """The forward equations x_k = f(W_k x_{k-1} + b_k), one column vector per layer."""
    xs, zs = [column(x0)], []
    for k in range(len(net.layers)):
        W = net.state_dict()[f"layers.{k}.weight"].astype(np.float64)
        b = column(net.state_dict()[f"layers.{k}.bias"])
        zs.append(W @ xs[-1] + b)
        xs.append(sigmoid(zs[-1]))
    return xs, zs


def step_matrix_form(net, x0) -> None:
    xs, _ = forward_by_hand(net, x0)
    show("3. matrix form: x_1 = f(W_1 x_0 + b_1), x_2 = f(W_2 x_1 + b_2), x_3 = f(W_3 x_2 + b_3)",
         x_1=xs[1].ravel(), x_2=xs[2].ravel(), x_3=xs[3].ravel(),
         engine_output=net.predict(np.reshape(x0, (1, -1)))[0])
    np.testing.assert_allclose(xs[3].ravel(), net.predict(np.reshape(x0, (1, -1)))[0],
                               rtol=1e-12)


def step_loss_and_last_gradient(net, x0, y) -> None:
    """L = 1/2 ||x_3 - y||^2 and dL/dW_3 = [(x_3 - y) * f'(z_3)] x_2^T (not ||x_3 - y|| ...)."""
    xs, zs = forward_by_hand(net, x0)
    loss = 0.5 * float(np.sum((xs[3] - column(y)) ** 2))
    delta3 = (xs[3] - column(y)) * sigmoid_prime(zs[2])  # a vector: one entry per output
    dW3 = delta3 @ xs[2].T
    norm_version = np.linalg.norm(xs[3] - column(y)) * sigmoid_prime(zs[2]) @ xs[2].T
    engine_loss, grads = net.loss_and_gradients(np.reshape(x0, (1, -1)), np.reshape(y, (1, -1)),
                                                mp.losses.get("half_sse", "sum"))
    show("4. the loss L = 1/2 ||x_3 - y||^2 and dL/dW_3 = [(x_3 - y) * f_3'(z_3)] x_2^T",
         loss_by_hand=loss, loss_engine=engine_loss, dL_dW3_by_hand=dW3,
         dL_dW3_engine=grads["layers.2.weight"], with_the_norm_instead=norm_version)
    np.testing.assert_allclose(loss, engine_loss, rtol=1e-12)
    np.testing.assert_allclose(dW3, grads["layers.2.weight"], rtol=1e-10)
    assert not np.allclose(norm_version, grads["layers.2.weight"], rtol=1e-3)
    print("   the norm ||x_3 - y|| (a scalar) gives a different matrix: the vector form is right")


def step_update(net, x0, y, lr=0.5) -> None:
    """w <- w - alpha dL/dw for every weight: one SGD step of the engine on this one sample."""
    _, grads = net.loss_and_gradients(np.reshape(x0, (1, -1)), np.reshape(y, (1, -1)),
                                      mp.losses.get("half_sse", "sum"))
    by_hand = {name: value - lr * grads[name] for name, value in net.state_dict().items()}
    trained = net.copy()
    mp.fit(trained, np.reshape(x0, (1, -1)), np.reshape(y, (1, -1)),
           loss=mp.losses.get("half_sse", "sum"), optimizer=mp.optimizers.SGD(lr=lr),
           batch_size=1, epochs=1, shuffle=False)
    show(f"5. one update w <- w - alpha dL/dw, alpha = {lr}",
         W_3_by_hand=by_hand["layers.2.weight"],
         W_3_after_fit=trained.state_dict()["layers.2.weight"])
    for name, value in by_hand.items():
        np.testing.assert_allclose(trained.state_dict()[name], value, rtol=1e-12)


def step_batch_is_a_sum(net, X, Y) -> None:
    """The batch loss sums the samples' losses; so does its gradient: dL/dw = sum_n dC^n/dw."""
    loss = mp.losses.get("half_sse", "sum")
    batch_loss, batch_grads = net.loss_and_gradients(X, Y, loss)
    per_sample = [net.loss_and_gradients(X[n:n + 1], Y[n:n + 1], loss) for n in range(len(X))]
    summed = sum(grads["layers.0.weight"] for _, grads in per_sample)
    show("6. a batch: L = sum_n C^n and dL/dW = sum_n dC^n/dW",
         batch_loss=batch_loss, sum_of_sample_losses=sum(value for value, _ in per_sample),
         dL_dW1_batch=batch_grads["layers.0.weight"], sum_of_sample_gradients=summed)
    np.testing.assert_allclose(batch_loss, sum(value for value, _ in per_sample), rtol=1e-12)
    np.testing.assert_allclose(batch_grads["layers.0.weight"], summed, rtol=1e-10)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the worked example as markdown here")
    args = parser.parse_args(argv)
    step_one_neuron()
    small = mp.MLP([2, 2, 2], activation="sigmoid", seed=1, dtype="float64")
    x, y = np.array([0.05, 0.10]), np.array([0.01, 0.99])
    step_neuron_chain_rule(small, x, y)
    net = mp.MLP([2, 3, 3, 2], activation="sigmoid", seed=2, dtype="float64")  # x_0 ... x_3
    step_matrix_form(net, x)
    step_loss_and_last_gradient(net, x, y)
    step_update(net, x, y)
    rng = np.random.default_rng(0)
    step_batch_is_a_sum(net, rng.uniform(-1, 1, (5, 2)), rng.uniform(0, 1, (5, 2)))
    explanation = mp.explain(small, x, y, "half_sse")
    print("\n== 7. all of it at once: matrixprop explain\n")
    print(explanation.to_text())
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(explanation.to_markdown())
        print(f"\nmarkdown written to {args.markdown}")
    print("\nevery hand computation agrees with the engine")


if __name__ == "__main__":
    main()
