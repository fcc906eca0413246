"""A diverging run stops with the epoch, the step and a hint, keeps its last good checkpoint and
never saves a non-finite weight; --clip-grad-norm keeps the same run finite."""

import os

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main, run_cli

import matrixprop as mp
from matrixprop.checkpoint import CheckpointCallback, load_checkpoint, save_checkpoint
from matrixprop.guards import DivergenceGuard


@pytest.fixture
def line(tmp_path):
    """y = 3x: plain gradient descent with lr=3 multiplies the error by about -5 per step."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 1))
    path = tmp_path / "line.csv"
    np.savetxt(path, np.column_stack([X, 3 * X[:, 0] + 0.1 * rng.normal(size=32)]),
               delimiter=",")
    return path


def _train(data, out, lr, *extra):
    return ["train", "--dataset", data, "--layers", "1,1", "--loss", "mse", "--optimizer",
            "sgd", "--lr", lr, "--batch-size", "32", "--epochs", "200",
            "--validation-fraction", "0", "--out", out, "--json", *extra]


# -- the command ----------------------------------------------------------------------------
def test_divergence_keeps_the_last_good_checkpoint(line, tmp_path):
    out = tmp_path / "run"
    result = run_cli(*_train(line, out, 3))  # in a subprocess: exit code and output as users see
    message = assert_clean_failure(result, 1, "became non-finite in epoch", "step 1",
                                   "lower the learning rate", "--clip-grad-norm",
                                   "is kept in")
    diverged = int(message.split("in epoch ")[1].split(",")[0])
    assert diverged > 1
    checkpoint = load_checkpoint(out / "checkpoint.safetensors")
    assert checkpoint.epoch == diverged - 1 and f"checkpoint of epoch {diverged - 1}" in message
    assert np.isfinite(checkpoint.network.params).all()
    assert np.isfinite(checkpoint.history["loss"]).all()
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors"]  # no model, no half files


def test_divergence_in_the_first_epoch_leaves_no_folder(line, tmp_path):
    out = tmp_path / "run"
    result = call_main(*_train(line, out, 1e30, "--batch-size", "4"))
    assert_clean_failure(result, 1, "in epoch 1, step", "nothing was saved")
    assert not out.exists()


def test_clipping_the_gradient_norm_keeps_the_same_run_finite(line, tmp_path):
    out = tmp_path / "run"
    result = call_main(*_train(line, out, 3, "--clip-grad-norm", "1"))
    assert result.returncode == 0, result.stderr
    net = mp.load(out / "model.safetensors")
    assert np.isfinite(net.params).all()
    config = load_checkpoint(out / "checkpoint.safetensors").metadata["training"]
    assert config["clip_grad_norm"] == 1.0
    resumed = call_main(*_train(line, out, 3, "--resume", "--clip-grad-norm", "2", "--epochs",
                                "201"))
    assert_clean_failure(resumed, 2, "--clip-grad-norm", "1.0")  # the run's, not another


# -- the guard ------------------------------------------------------------------------------
def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, 3)), rng.integers(0, 2, 24)


def _poison(epoch_step: tuple[int, int], steps_per_epoch: int):
    """A gradient hook that puts a NaN in the gradient of one step (counted from 1)."""
    target = (epoch_step[0] - 1) * steps_per_epoch + epoch_step[1]
    calls = [0]

    def hook(grads):
        calls[0] += 1
        if calls[0] == target:
            grads[3] = np.nan
    return hook


@pytest.mark.parametrize("every_step, poisoned, expected", [
    (True, (2, 2), "gradient became non-finite (nan at flat index 3) in epoch 2, step 2"),
    (False, (2, 3), "gradient became non-finite (nan at flat index 3) in epoch 2, last step"),
    (False, (2, 2), "training loss became non-finite in epoch 2, step 3"),  # fit's own check
])
def test_guard_stops_before_the_checkpoint(tmp_path, every_step, poisoned, expected):
    X, y = _data()
    net = mp.MLP([3, 4, 2], "tanh", "softmax", seed=0, dtype="float64")
    path = tmp_path / "checkpoint.safetensors"
    callbacks = [DivergenceGuard(every_step=every_step), CheckpointCallback(path, seed=0)]
    with pytest.raises(FloatingPointError, match=r"\(clip_grad_norm\)") as error:
        mp.fit(net, X, y, optimizer=mp.optimizers.SGD(lr=0.1), batch_size=8, epochs=5,
               seed=0, callbacks=callbacks, gradient_hooks=[_poison(poisoned, 3)])
    assert expected in str(error.value)
    checkpoint = load_checkpoint(path)
    assert checkpoint.epoch == 1 and np.isfinite(checkpoint.network.params).all()


def test_guard_leaves_the_compiled_epochs_on_unless_asked_every_step():
    assert not DivergenceGuard().wants_batches
    assert DivergenceGuard(every_step=True).wants_batches


def test_guard_checks_the_weights_at_the_end_of_an_epoch():
    class Blowup(mp.callbacks.Callback):
        def on_epoch_end(self, state):
            state.network.params[0] = np.inf

    X, y = _data()
    net = mp.MLP([3, 4, 2], "tanh", "softmax", seed=0)
    with pytest.raises(FloatingPointError, match="weights became non-finite .* in epoch 1:"):
        mp.fit(net, X, y, epochs=3, seed=0, callbacks=[Blowup(), DivergenceGuard()])


def test_huge_but_finite_gradients_are_not_divergence():
    guard = DivergenceGuard()
    state = mp.callbacks.TrainingState(mp.MLP([3, 2], seed=0, dtype="float64"), None, 1, 1, 1,
                                       None)
    state.network.grads[:] = 1e200  # the dot product overflows; every entry is finite
    guard.on_epoch_end(state)


def test_checkpoint_refuses_non_finite_optimizer_state(tmp_path):
    net = mp.MLP([3, 2], seed=0)
    optimizer = mp.optimizers.Adam()
    optimizer.setup(net)
    optimizer.state["exp_avg"][1] = np.nan
    with pytest.raises(ValueError, match="optimizer.exp_avg contains NaN"):
        save_checkpoint(tmp_path / "c.safetensors", net, optimizer, epoch=1, seed=0,
                        history=mp.History())
    assert not (tmp_path / "c.safetensors").exists()
