"""Training end to end: XOR, the 8x8 digits, and the features of fit."""

import logging

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import matrixprop as mp

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def test_xor_is_learned_with_batch_gradient_descent():
    net = mp.MLP([2, 4, 1], "sigmoid", seed=1, dtype="float64")  # one f everywhere, as the article
    history = mp.fit(net, XOR_X, XOR_Y, loss="half_sse", optimizer=mp.optimizers.SGD(lr=2.0),
                     batch_size=None, epochs=3000, shuffle=False)
    assert history["loss"][-1] < 0.01 < history["loss"][0]
    np.testing.assert_array_equal(net.predict(XOR_X) > 0.5, XOR_Y > 0.5)
    assert history["accuracy"][-1] == 1.0


def test_digits_reach_96_percent(digits):
    X_train, X_test, y_train, y_test = digits
    net = mp.MLP([64, 64, 10], "relu", "softmax", seed=0)
    history = mp.fit(net, X_train, y_train, optimizer=mp.optimizers.Adam(lr=3e-3), batch_size=32,
                     epochs=20, seed=0, validation_data=(X_test, y_test))
    accuracy = np.mean(net.predict(X_test).argmax(axis=1) == y_test)
    assert accuracy >= 0.96
    assert history["val_accuracy"][-1] == pytest.approx(accuracy)
    assert sum(history["epoch_seconds"]) < 10


def test_stochastic_mini_batch_and_batch_descent_take_the_expected_steps():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    for batch_size, steps in [(1, 10), (4, 3), (None, 1), (10, 1), (1000, 1)]:
        opt = mp.optimizers.SGD(lr=0.01)
        mp.fit(mp.MLP([3, 2], "identity", seed=0), X, Y, loss="mse", optimizer=opt,
               batch_size=batch_size, epochs=1)
        assert opt.t == steps


def test_batch_gradient_descent_equals_one_full_gradient_step():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    net = mp.MLP([3, 4, 2], "tanh", "identity", seed=0, dtype="float64")
    expected = net.copy()
    _, grads = expected.loss_and_gradients(X, Y, "half_sse")
    for name, value in expected.state_dict().items():
        value -= 0.1 * grads[name]
    mp.fit(net, X, Y, loss="half_sse", optimizer=mp.optimizers.SGD(lr=0.1), batch_size=None,
           epochs=1)
    np.testing.assert_allclose(net.params, expected.params, rtol=1e-14)


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 2, 40)
    X_val, y_val = rng.normal(size=(40, 5)), rng.integers(0, 2, 40)  # pure noise: overfits
    net = mp.MLP([5, 64, 2], "relu", "softmax", seed=0)
    history = mp.fit(net, X, y, optimizer=mp.optimizers.Adam(lr=0.01), epochs=200, batch_size=8,
                     seed=0, validation_data=(X_val, y_val), early_stopping=True, patience=5)
    assert len(history) < 200
    best = history.best_epoch
    assert history["val_loss"][best] == min(history["val_loss"])
    assert net.loss(X_val, y_val) == pytest.approx(history["val_loss"][best], rel=1e-5)


def test_callbacks_are_called_in_order_and_can_stop_training():
    calls = []

    class Recorder(mp.Callback):
        def on_train_begin(self, state):
            calls.append("begin")

        def on_epoch_begin(self, state):
            calls.append(f"epoch {state.epoch}")

        def on_batch_end(self, state):
            calls.append("batch")

        def on_epoch_end(self, state):
            calls.append(f"end {state.epoch} {state.logs['loss']:.3f}")
            state.stop_training = state.epoch == 1

        def on_train_end(self, state):
            calls.append("done")

    X, Y = np.ones((6, 2)), np.zeros((6, 1))
    history = mp.fit(mp.MLP([2, 1], "identity", seed=0), X, Y, loss="mse", batch_size=3,
                     epochs=5, callbacks=[Recorder()])
    assert len(history) == 2
    assert calls[0] == "begin" and calls[-1] == "done"
    assert calls[1:4] == ["epoch 0", "batch", "batch"]
    assert calls[4].startswith("end 0") and calls[5] == "epoch 1"


def test_history_records_metrics_and_writes_csv(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    history = mp.fit(mp.MLP([4, 5, 3], "relu", "softmax", seed=0), X, y, epochs=3,
                     validation_data=(X, y))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
                "samples_per_second"):
        assert len(history[key]) == 3
    assert all(0 <= a <= 1 for a in history["accuracy"])
    history.to_csv(tmp_path / "history.csv")
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,loss,accuracy,val_loss")
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_l2_decays_the_weights_in_the_books_form_and_not_the_biases():
    """With X = 0 the data gradient of W is 0, so one step scales W by exactly 1 - lr l2 / n."""
    X, Y = np.zeros((20, 3)), np.random.default_rng(0).normal(size=(20, 2))
    plain, regularized = (mp.MLP([3, 2], "identity", seed=0, dtype="float64") for _ in range(2))
    lr, l2 = 0.05, 4.0
    for net, lam in [(plain, 0.0), (regularized, l2)]:
        mp.fit(net, X, Y, loss="mse", optimizer=mp.optimizers.SGD(lr=lr), epochs=1, l2=lam,
               batch_size=None, shuffle=False)
    W, b = "layers.0.weight", "layers.0.bias"
    np.testing.assert_allclose(regularized.state_dict()[W],
                               plain.state_dict()[W] * (1 - lr * l2 / 20), rtol=1e-14)
    np.testing.assert_array_equal(regularized.state_dict()[b], plain.state_dict()[b])


def test_clip_grad_norm_bounds_every_update():
    X, Y = np.full((4, 2), 100.0), np.full((4, 1), -100.0)
    net = mp.MLP([2, 1], "identity", seed=0, dtype="float64")
    before = net.params.copy()
    mp.fit(net, X, Y, loss="mse", optimizer=mp.optimizers.SGD(lr=1.0), batch_size=None,
           epochs=1, clip_grad_norm=0.5)
    assert np.linalg.norm(net.params - before) == pytest.approx(0.5)


def test_gradient_hooks_see_the_complete_gradient():
    seen = []
    X, Y = np.ones((4, 2)), np.zeros((4, 1))
    net = mp.MLP([2, 1], "identity", seed=0, dtype="float64")
    _, grads = net.loss_and_gradients(X, Y, "mse")
    mp.fit(net, X, Y, loss="mse", batch_size=None, epochs=1, shuffle=False,
           gradient_hooks=[lambda g: seen.append(g.copy())], optimizer=mp.optimizers.SGD(lr=0.1))
    np.testing.assert_allclose(seen[0], np.concatenate([grads[k].ravel() for k in grads]))


def test_sample_weights_of_zero_remove_samples():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    weights = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)
    net = mp.MLP([3, 2], "identity", seed=0, dtype="float64")
    weighted = net.loss_and_gradients(X, Y, "mse", sample_weight=weights)
    subset = net.loss_and_gradients(X[:4], Y[:4], "mse")
    assert weighted[0] == pytest.approx(subset[0])
    for name in subset[1]:
        np.testing.assert_allclose(weighted[1][name], subset[1][name], rtol=1e-12)


def test_dropout_trains_but_never_changes_predictions():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 2, 64)
    net = mp.MLP([6, 32, 2], "relu", "softmax", seed=0, dropout=0.5)
    np.testing.assert_array_equal(net.predict(X), net.predict(X))
    first, _ = net.loss_and_gradients(X, y, training=True)
    second, _ = net.loss_and_gradients(X, y, training=True)
    assert first != second  # a new mask each time
    history = mp.fit(net, X, y, epochs=30, seed=0, optimizer=mp.optimizers.Adam(lr=0.01))
    assert history["loss"][-1] < history["loss"][0]


def test_schedule_changes_the_rate_per_epoch():
    X, Y = np.ones((4, 2)), np.zeros((4, 1))
    history = mp.fit(mp.MLP([2, 1], "identity", seed=0), X, Y, loss="mse", epochs=4,
                     optimizer=mp.optimizers.SGD(lr=0.1), schedule=mp.schedules.StepLR(2, 0.5))
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_divergence_raises_with_a_hint():
    X, Y = np.full((4, 2), 1e3), np.full((4, 1), 1e3)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        mp.fit(mp.MLP([2, 8, 1], "identity", seed=0), X, Y, loss="mse", epochs=50,
               optimizer=mp.optimizers.SGD(lr=10.0))


def test_progress_bar_and_logger_callbacks_report(caplog):
    from io import StringIO

    from rich.console import Console

    stream = StringIO()
    X, y = np.ones((8, 2)), np.array([0, 1] * 4)
    with caplog.at_level(logging.INFO, logger="matrixprop"):
        mp.fit(mp.MLP([2, 2], "softmax", seed=0), X, y, epochs=2,
               callbacks=[mp.ProgressBar(console=Console(file=stream, width=120)),
                          mp.callbacks.LossLogger()])
    assert "epoch 2/2" in stream.getvalue()
    assert "samples/s" in stream.getvalue()
    assert "epoch 2/2" in caplog.text and "loss=" in caplog.text


def test_history_keeps_metrics_aligned_when_one_appears_late(tmp_path):
    history = mp.History()
    history.append(0, {"loss": 1.0})
    history.append(1, {"loss": 0.5, "grad_norm": 2.0})
    history.append(2, {"grad_norm": 1.0})
    assert history["loss"][:2] == [1.0, 0.5] and np.isnan(history["loss"][2])
    assert np.isnan(history["grad_norm"][0]) and history["grad_norm"][1:] == [2.0, 1.0]
    history.to_csv(tmp_path / "h.csv")
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows == ["epoch,loss,grad_norm", "1,1.0,nan", "2,0.5,2.0", "3,nan,1.0"]
