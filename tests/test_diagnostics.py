"""Training diagnostics: every recorded number against an independent computation, the vanishing
gradient of a deep sigmoid network, dead and saturated units, the CSV and the plot."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main
from matplotlib import image as mpimg

import matrixprop as mp
from matrixprop.diagnostics import Diagnostics
from matrixprop.plots_diagnostics import plot_diagnostics


def teacher_problem(n=256, n_in=16, n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    return X, (X @ rng.normal(size=(n_in, n_classes))).argmax(axis=1)


def train(net, X, y, diagnostics, **kwargs):
    options = {"loss": "cross_entropy", "optimizer": mp.optimizers.SGD(lr=0.1),
               "batch_size": 32, "epochs": 3, "seed": 0, **kwargs}
    return mp.fit(net, X, y, callbacks=[diagnostics], gradient_hooks=[diagnostics], **options)


def test_deep_sigmoid_gradient_vanishes_where_relu_does_not():
    X, y = teacher_problem()
    norms = {}
    for activation in ("sigmoid", "relu"):
        net = mp.MLP([16, 32, 32, 32, 32, 32, 4], activation=activation,
                     output_activation="softmax", seed=0)
        history = train(net, X, y, Diagnostics())
        norms[activation] = np.array([history[f"layer{k}_grad_norm"] for k in range(6)])
    sigmoid, relu = norms["sigmoid"], norms["relu"]
    assert sigmoid.shape == (6, 3)
    assert (sigmoid[0] < relu[0] / 10).all()  # first layer: far below the ReLU network's
    assert (sigmoid[0] < sigmoid[5] / 10).all()  # and far below its own last layer
    assert (np.diff(sigmoid, axis=0) > 0).all()  # shrinking layer by layer towards the input


def test_recorded_numbers_equal_an_independent_computation():
    """Full-batch gradient descent: the one batch gradient per epoch is loss_and_gradients'."""
    X, y = teacher_problem(n=64)
    net = mp.MLP([16, 8, 6, 4], activation="tanh", output_activation="softmax", seed=1,
                 dtype="float64")
    lr = 0.5
    expected = []
    replay = net.copy()
    def snapshot():
        return {name: value.copy() for name, value in replay.state_dict().items()}

    for _ in range(3):
        _, grads = replay.loss_and_gradients(X, y, "cross_entropy")
        before = snapshot()
        replay.params -= lr * replay.grads
        expected.append((before, grads, snapshot()))
    history = train(net, X, y, Diagnostics(), batch_size=None, shuffle=False,
                    optimizer=mp.optimizers.SGD(lr=lr))
    for epoch, (before, grads, after) in enumerate(expected):
        for k in range(3):
            W0, dW, W1 = before[f"layers.{k}.weight"], grads[f"layers.{k}.weight"], after[
                f"layers.{k}.weight"]
            assert history[f"layer{k}_grad_norm"][epoch] == pytest.approx(
                np.sqrt(np.sum(dW ** 2)), rel=1e-9)
            assert history[f"layer{k}_weight_norm"][epoch] == pytest.approx(
                np.sqrt(np.sum(W1 ** 2)), rel=1e-9)
            assert history[f"layer{k}_update_ratio"][epoch] == pytest.approx(
                lr * np.sqrt(np.sum(dW ** 2)) / np.sqrt(np.sum(W0 ** 2)), rel=1e-7)


def test_grad_norm_is_the_mean_over_the_epochs_batches():
    X, y = teacher_problem(n=96)
    net = mp.MLP([16, 5, 4], activation="sigmoid", output_activation="softmax", seed=2,
                 dtype="float64")
    replay, optimizer = net.copy(), mp.optimizers.SGD(lr=0.2)
    optimizer.setup(replay)
    per_batch = []
    for start in range(0, 96, 32):  # no shuffling: the batches in order
        _, grads = replay.loss_and_gradients(X[start:start + 32], y[start:start + 32],
                                             "cross_entropy")
        optimizer.step()
        per_batch.append([np.linalg.norm(grads[f"layers.{k}.weight"]) for k in range(2)])
    history = train(net, X, y, Diagnostics(), epochs=1, shuffle=False,
                    optimizer=mp.optimizers.SGD(lr=0.2))
    for k in range(2):
        assert history[f"layer{k}_grad_norm"][0] == pytest.approx(
            np.mean([norms[k] for norms in per_batch]), rel=1e-9)


def test_dead_relu_units_are_counted():
    X, y = teacher_problem(n=128)
    net = mp.MLP([16, 10, 8, 4], activation="relu", output_activation="softmax", seed=0)
    net.state_dict()["layers.0.bias"][[2, 7]] = -1000.0  # never positive on any sample
    net.state_dict()["layers.1.bias"][5] = -1000.0
    history = train(net, X, y, Diagnostics(), epochs=2)
    assert history["layer0_dead"] == [pytest.approx(0.2)] * 2
    assert history["layer1_dead"] == [pytest.approx(1 / 8)] * 2
    assert "layer2_dead" not in history  # softmax output: not a ReLU layer
    # independently: these units are exactly the ones never positive on the training data
    hidden = np.maximum(X @ net.state_dict()["layers.0.weight"].T
                        + net.state_dict()["layers.0.bias"], 0)
    assert np.flatnonzero(hidden.max(axis=0) <= 0).tolist() == [2, 7]


def test_saturated_units_on_the_probe_batch():
    X, y = teacher_problem(n=128)
    net = mp.MLP([16, 12, 4], activation="sigmoid", output_activation="softmax", seed=0,
                 dtype="float64")
    net.state_dict()["layers.0.weight"][:6] *= 40.0  # half the units pushed into saturation
    probe = X[:50]
    diagnostics = Diagnostics(probe=probe, saturation=0.1)
    history = train(net, X, y, diagnostics, epochs=1, optimizer=mp.optimizers.SGD(lr=1e-9))
    z = probe @ net.state_dict()["layers.0.weight"].T + net.state_dict()["layers.0.bias"]
    s = 1.0 / (1.0 + np.exp(-z))
    expected = np.mean(s * (1 - s) < 0.1 * 0.25)
    assert history["layer0_saturated"][0] == pytest.approx(expected, abs=1e-12)
    assert 0.3 < expected < 0.6
    assert "layer1_saturated" not in history  # softmax is not measured


def test_history_csv_has_the_diagnostics_columns(tmp_path):
    X, y = teacher_problem(n=64)
    net = mp.MLP([16, 6, 4], activation="relu", output_activation="softmax", seed=0)
    history = train(net, X, y, Diagnostics(probe=X[:16]), epochs=2)
    history.to_csv(tmp_path / "history.csv")
    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for k in range(2):
        for metric in ("grad_norm", "weight_norm", "update_ratio"):
            values = [float(row[f"layer{k}_{metric}"]) for row in rows]
            assert values == pytest.approx(history[f"layer{k}_{metric}"])
            assert all(math.isfinite(v) and v > 0 for v in values)
    assert "layer0_dead" in rows[0]


def test_columns_keep_one_value_per_epoch_when_diagnostics_join_a_resumed_run():
    X, y = teacher_problem(n=64)
    net = mp.MLP([16, 6, 4], activation="relu", output_activation="softmax", seed=0)
    diagnostics = Diagnostics()
    history = mp.History()
    history.append(0, {"loss": 1.0})  # an epoch recorded before diagnostics were on
    state = mp.callbacks.TrainingState(net, None, 2, 1, 64, history)
    diagnostics.on_train_begin(state)
    diagnostics.on_epoch_begin(state)
    diagnostics(net.grads)
    history.append(1, {"loss": 0.9})
    diagnostics.on_epoch_end(state)
    assert len(history["layer0_grad_norm"]) == 2
    assert math.isnan(history["layer0_grad_norm"][0])


def test_misuse_is_explained():
    X, y = teacher_problem(n=32)
    net = mp.MLP([16, 4, 4], activation="relu", output_activation="softmax", seed=0)
    with pytest.raises(RuntimeError, match="callback"):
        mp.fit(net, X, y, epochs=1, gradient_hooks=[Diagnostics()])
    with pytest.raises(RuntimeError, match="gradient hook"):
        mp.fit(net, X, y, epochs=1, callbacks=[Diagnostics()])
    with pytest.raises(ValueError, match="probe"):
        mp.fit(net, X, y, epochs=1, callbacks=[Diagnostics(probe=X[:, :3])])
    with pytest.raises(ValueError, match="saturation"):
        Diagnostics(saturation=1.5)


def _assert_real_plot(path, min_size=(300, 600)):
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= min_size[0] and pixels.shape[1] >= min_size[1]
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05  # not blank
    assert len(np.unique(np.round(rgb, 2), axis=0)) > 20  # lines, text and colours


def test_diagnostics_png_is_a_real_plot(tmp_path):
    X, y = teacher_problem()
    net = mp.MLP([16, 16, 16, 16, 4], activation="relu", output_activation="softmax", seed=0)
    history = train(net, X, y, Diagnostics(probe=X[:64]), epochs=4)
    path = plot_diagnostics(history, tmp_path / "diagnostics.png", title="relu")
    assert path == tmp_path / "diagnostics.png"
    _assert_real_plot(path)


def test_plot_axes_are_labelled(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    X, y = teacher_problem(n=64)
    net = mp.MLP([16, 8, 8, 4], activation="sigmoid", output_activation="softmax", seed=0)
    history = train(net, X, y, Diagnostics(probe=X[:16]), epochs=2)
    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: saved.append(self))
    plot_diagnostics(history, tmp_path / "d.png")
    axes = saved[0].axes
    assert [a.get_ylabel() for a in axes] == [
        "gradient norm ||dL/dW||", "weight norm ||W||", "update / weight ||dW|| / ||W||",
        "saturated unit fraction"]
    assert all(a.get_xlabel() == "epoch" for a in axes)
    assert all(len(a.get_lines()) == 3 for a in axes[:3])  # one line per layer


def test_plot_refuses_a_history_without_diagnostics(tmp_path):
    history = mp.History()
    history.append(0, {"loss": 1.0})
    with pytest.raises(ValueError, match="no diagnostics"):
        plot_diagnostics(history, tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


def test_train_diagnostics_writes_the_columns_and_both_plots(tmp_path):
    out = tmp_path / "run"
    result = call_main("train", "--layers", "64,16,16,16,10", "--activation", "sigmoid",
                       "--epochs", "2", "--diagnostics", "--out", out, "--no-progress", "--json")
    assert result.returncode == 0, result.stderr
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for k in range(4):
        assert float(rows[-1][f"layer{k}_grad_norm"]) > 0
    assert float(rows[-1]["layer0_grad_norm"]) < float(rows[-1]["layer3_grad_norm"])
    assert "layer0_saturated" in rows[0]
    _assert_real_plot(out / "diagnostics.png")
    _assert_real_plot(out / "curves.png", min_size=(250, 500))
    # resuming keeps recording, so every column has a value for every epoch
    assert call_main("train", "--out", out, "--resume", "--epochs", "3", "--no-progress",
                     "--json").returncode == 0
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all(row["layer0_grad_norm"] for row in rows)


def test_diagnostics_cannot_start_in_the_middle_of_a_run(tmp_path):
    out = tmp_path / "run"
    assert call_main("train", "--layers", "64,8,10", "--epochs", "1", "--out", out,
                     "--no-progress", "--json").returncode == 0
    result = call_main("train", "--out", out, "--resume", "--epochs", "2", "--diagnostics",
                       "--no-progress")
    assert_clean_failure(result, 2, "without --diagnostics")
    assert not (out / "diagnostics.png").exists()
