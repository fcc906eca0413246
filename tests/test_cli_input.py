"""Every option of every command: a bad value ends in one line naming the option, the value
and what is allowed (exit code 2), with no traceback and no file written; a network or batch
too large for the machine's memory is refused before anything is allocated."""

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main, run_cli

import matrixprop as mp
from matrixprop import _resources
from matrixprop.cli import _common


@pytest.fixture
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    np.savez(folder / "tiny.npz", X=rng.normal(size=(40, 4)), y=rng.integers(0, 3, 40))
    out = folder / "run"
    result = call_main("train", "--dataset", folder / "tiny.npz", "--layers", "4,6,3",
                       "--epochs", "2", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    return out / "model.safetensors"


# (arguments, fragments of the message): the option, the value and what is allowed
BAD_OPTIONS = [
    (["train", "--batch-size", "abc"], ["--batch-size", "integer"]),
    (["train", "--batch-size", "0"], ["--batch-size", "greater than or equal to 1"]),
    (["train", "--epochs", "1.5"], ["--epochs", "integer"]),
    (["train", "--lr", "inf"], ["--lr", "finite number > 0", "inf"]),
    (["train", "--lr", "x"], ["--lr", "number"]),
    (["train", "--seed", "-1"], ["--seed", "greater than or equal to 0"]),
    (["train", "--threads", "0"], ["--threads", "greater than or equal to 1"]),
    (["train", "--patience", "0"], ["--patience", "greater than or equal to 1"]),
    (["train", "--dtype", "float16"], ["--dtype", "float16", "float32", "float64"]),
    (["train", "--init", "zeros"], ["--init", "zeros", "glorot_uniform"]),
    (["train", "--reduction", "max"], ["--reduction", "max", "batchmean"]),
    (["train", "--loss", "hinge"], ["--loss", "hinge", "cross_entropy"]),
    (["train", "--weight-decay", "-1"], ["--weight-decay", ">= 0", "-1"]),
    (["train", "--l2", "nan"], ["--l2", ">= 0", "nan"]),
    (["train", "--clip-grad-norm", "0"], ["--clip-grad-norm", "> 0", "got 0"]),
    (["train", "--clip-grad-norm", "-inf"], ["--clip-grad-norm", "> 0", "-inf"]),
    (["train", "--momentum", "1.5", "--optimizer", "sgd"], ["--momentum", "[0, 1)", "1.5"]),
    (["train", "--layers", "4,x,3"], ["--layers", "784,30,10", "4,x,3"]),
    (["train", "--out", "{file}"], ["--out", "is a file, not a folder"]),
    (["train", "--validation-fraction", "0.999", "--dataset", "{data}"],
     ["--validation-fraction", "0.999", "empty"]),
    (["train", "--bogus"], ["No such option: --bogus"]),
    (["evaluate", "{model}", "--loss", "binary_cross_entropy"],
     ["--loss", "binary_cross_entropy", "'sigmoid'"]),
    (["evaluate", "{model}", "--reduction", "bad"], ["--reduction", "bad", "mean"]),
    (["predict", "{model}", "{data}", "--out", "x.txt"], ["--out", "x.txt", ".csv or .npy"]),
    (["gradcheck", "--samples", "0"], ["--samples", "greater than or equal to 1"]),
    (["gradcheck", "--tolerance", "0"], ["--tolerance", "> 0"]),
    (["gradcheck", "--layers", "4"], ["--layers", "at least two", "'4'"]),
    (["gradcheck", "--loss", "binary_cross_entropy", "--output-activation", "softmax"],
     ["--loss", "'sigmoid'", "'softmax'"]),
    (["explain", "--neuron", "x"], ["--neuron", "LAYER,INDEX", "'x'"]),
    (["explain", "--neuron", "9,9"], ["--neuron", "9"]),
    (["explain", "--width", "10"], ["--width", "greater than or equal to 40"]),
    (["explain", "--format", "pdf"], ["--format", "pdf", "markdown"]),
    (["explain", "--lr", "0"], ["--lr", "> 0"]),
    (["info", "--bogus"], ["No such option: --bogus"]),
    (["playground", "--port", "70000"], ["--port", "less than or equal to 65535"]),
    (["export", "{model}", "--out", "m.onnx", "--format", "tf"], ["--format", "tf", "onnx"]),
]


@pytest.mark.parametrize("args, fragments", BAD_OPTIONS, ids=[" ".join(a) for a, _ in
                                                             BAD_OPTIONS])
def test_bad_option_values(model, tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    names = {"model": model, "data": model.parent.parent / "tiny.npz", "file": "file"}
    args = [arg.format(**names) for arg in args]
    before = sorted(tmp_path.iterdir())
    assert_clean_failure(call_main(*args), 2, *fragments)
    assert sorted(tmp_path.iterdir()) == before  # nothing written


# -- memory ---------------------------------------------------------------------------------
def test_absurd_layers_are_refused_up_front_with_the_estimate(tmp_path):
    """In a subprocess, on this machine's real figures: 10^12 weights need terabytes."""
    result = run_cli("train", "--layers", "784,1000000,1000000,10", cwd=tmp_path)
    line = assert_clean_failure(result, 2, "--layers", "784,1000000,1000000,10", "TiB",
                                "parameters", "gradients", "optimizer state", "available")
    assert "adam in float32" in line
    assert list(tmp_path.iterdir()) == []


def test_the_issue_example_is_refused_before_the_data_is_read(monkeypatch, tmp_path):
    monkeypatch.setattr(_common, "available_memory", lambda: 64 * 2**30)
    monkeypatch.setattr("matrixprop.cli._training.load_dataset", pytest.fail)  # never reached
    result = call_main("train", "--layers", "784,100000,100000,10", "--out", tmp_path / "run")
    line = assert_clean_failure(result, 2, "--layers", "needs about 187.7 GiB",
                                "optimizer state 112.6 GiB", "parameters 37.5 GiB",
                                "only 64.0 GiB of memory are available")
    assert "784,100000,100000,10" in line
    assert not (tmp_path / "run").exists()


def test_a_batch_too_large_names_the_batch_size(monkeypatch, tmp_path):
    monkeypatch.setattr(_common, "available_memory", lambda: 100 * 2**20)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(2000, 4)), y=rng.integers(0, 3, 2000))
    result = call_main("train", "--dataset", tmp_path / "d.npz", "--layers", "4,20000,3",
                       "--batch-size", "2000", "--validation-fraction", "0", "--out",
                       tmp_path / "run")
    assert_clean_failure(result, 2, "--batch-size", "batches of 1600", "batch workspaces")
    assert not (tmp_path / "run").exists()
    small = call_main("train", "--dataset", tmp_path / "d.npz", "--layers", "4,20000,3",
                      "--batch-size", "16", "--epochs", "1", "--validation-fraction", "0",
                      "--out", tmp_path / "run")
    assert small.returncode == 0, small.stderr


@pytest.mark.parametrize("args, flag", [
    (["gradcheck", "--samples", "10000000000"], "--samples"),
    (["gradcheck", "--layers", "4,100000,100000,3"], "--layers"),
    (["explain", "--layers", "2,1000000,1000000,2"], "--layers"),
])
def test_other_commands_refuse_networks_and_batches_too_large(args, flag):
    assert_clean_failure(call_main(*args), 2, flag, "needs about", "available")


def test_without_a_memory_figure_nothing_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(_common, "available_memory", lambda: None)
    result = call_main("gradcheck", "--layers", "3,4,2")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("optimizer", [mp.optimizers.Adam(), mp.optimizers.SGD(),
                                       mp.optimizers.SGD(momentum=0.9),
                                       mp.optimizers.RMSprop(momentum=0.5, centered=True)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_estimate_matches_what_training_allocates(optimizer, dtype):
    sizes = [7, 11, 5, 3]
    estimate = _resources.estimate(sizes, activation="tanh", output_activation="softmax",
                                   dtype=dtype, dropout=0.5, optimizer=optimizer, batch_rows=9,
                                   predict_rows=4)
    net = mp.MLP(sizes, "tanh", "softmax", dtype=dtype, dropout=0.5)
    optimizer.setup(net)
    arrays = [*optimizer.state_dict().values(), net.params]  # the state, and a scratch array
    assert estimate.parts["parameters"] == net.params.nbytes == estimate.parts["gradients"]
    assert estimate.parts["optimizer state"] == sum(
        a.nbytes for a in arrays if isinstance(a, np.ndarray))
    row = {id(a): a for ws in net.workspace(1) for a in vars(ws).values()
           if isinstance(a, np.ndarray)}
    per_row = sum(a.nbytes for a in row.values())
    assert estimate.parts["prediction workspaces"] == 4 * per_row
    gathered = 9 * (sizes[0] + sizes[-1]) * np.dtype(dtype).itemsize
    assert estimate.parts["batch workspaces"] == 2 * 9 * per_row + gathered


def test_available_memory_and_sizes():
    available = _resources.available_memory()
    assert available is None or available > 0
    assert _resources.format_bytes(512) == "512 B"
    assert _resources.format_bytes(1536) == "1.5 KiB"
    assert _resources.format_bytes(3 * 2**40) == "3.0 TiB"
