"""Ctrl-C during ``matrixprop train``: the current epoch finishes and its checkpoint is kept, the
command exits with 130 and says how to resume, and resuming ends where an uninterrupted run ends.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _cli import ROOT, call_main

import matrixprop as mp
from matrixprop.checkpoint import load_checkpoint
from matrixprop.cli._interrupt import StopOnInterrupt

EPOCHS = 100_000  # far more than the seconds the test waits allow


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, X=rng.normal(size=(40, 4)), y=rng.integers(0, 3, 40))
    return path


def _args(data, out, epochs):
    return ["train", "--dataset", str(data), "--layers", "4,6,3", "--dtype", "float64",
            "--batch-size", "8", "--epochs", str(epochs), "--out", str(out), "--json"]


def _start(args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "matrixprop", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_after_a_checkpoint(process, out, signals=1, gap=0.05, settle=0.0):
    """SIGINT ``signals`` times, ``gap`` apart, ``settle`` seconds after the first checkpoint
    appears (the checkpoint is written before the epoch's last callbacks run: a signal at once
    may land before them, and the run then ends within the gap)."""
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.safetensors").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(settle)
    for _ in range(signals):
        process.send_signal(signal.SIGINT)
        time.sleep(gap)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


def test_ctrl_c_keeps_the_epoch_and_resume_ends_where_a_straight_run_ends(data, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = _interrupt_after_a_checkpoint(_start(_args(data, out, EPOCHS)), out)
    assert code == 130, stderr
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("interrupt: stopping once this epoch")
    epoch = load_checkpoint(out / "checkpoint.safetensors").epoch
    assert 1 <= epoch < EPOCHS
    assert lines[-1] == (f"interrupted after epoch {epoch}: its checkpoint is in "
                         f"{out / 'checkpoint.safetensors'}; continue with: matrixprop train "
                         f"--out {out} --resume --epochs {EPOCHS}")
    assert "Traceback" not in stderr and stdout == ""
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors"]  # the run is not finished

    total = epoch + 3
    assert call_main(*_args(data, out, total), "--resume").returncode == 0
    straight = tmp_path / "straight"
    assert call_main(*_args(data, straight, total)).returncode == 0
    resumed, uninterrupted = (mp.load(path / "model.safetensors") for path in (out, straight))
    assert np.array_equal(resumed.params, uninterrupted.params)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    """Epochs of 4000 single-sample steps with dropout (the NumPy engine, whose Python loop
    handles the signal between steps) last far longer than the 20 ms between the two."""
    rng = np.random.default_rng(0)
    data = tmp_path / "larger.npz"
    np.savez(data, X=rng.normal(size=(4000, 4)), y=rng.integers(0, 3, 4000))
    out = tmp_path / "run"
    args = _args(data, out, EPOCHS) + ["--batch-size", "1", "--dropout", "0.1",
                                       "--validation-fraction", "0"]
    code, _, stderr = _interrupt_after_a_checkpoint(_start(args), out, signals=2, gap=0.02,
                                                    settle=0.05)
    assert code == 130, stderr
    epoch = load_checkpoint(out / "checkpoint.safetensors").epoch
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted after epoch {epoch}: ") and "--resume" in last
    assert "Traceback" not in stderr
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors"]  # no half-written temporary


def test_first_interrupt_asks_to_stop_and_the_second_raises():
    notices = []
    previous = signal.getsignal(signal.SIGINT)
    with StopOnInterrupt(notices.append) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and len(notices) == 1
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGINT) is previous


def test_training_stops_after_the_epoch_of_the_interrupt():
    stop = StopOnInterrupt(lambda line: None)
    stop.requested = True  # as if Ctrl-C came during the first epoch
    rng = np.random.default_rng(0)
    net = mp.MLP([4, 3], seed=0)
    history = mp.fit(net, rng.normal(size=(16, 4)), rng.integers(0, 3, 16), epochs=10,
                     callbacks=[stop], seed=0)
    assert len(history) == 1


def test_ctrl_c_before_training_exits_130_and_writes_nothing(monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("matrixprop.cli._training.load_dataset", interrupted)
    result = call_main("train", "--out", tmp_path / "run")
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
