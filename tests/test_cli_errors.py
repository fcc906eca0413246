"""Bad input to the command: one ``error:`` line on stderr, exit code 2 or 1, no files left.

Most cases call the command's ``main`` in this process (the same code path, without a Python
start-up each); a representative few run ``python -m matrixprop`` in a subprocess.
"""

import json
import pickle

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main, run_cli
from safetensors.numpy import load_file, save_file

import matrixprop as mp
from matrixprop.data import load_dataset, write_idx
from matrixprop.io import METADATA_KEY, read_file


@pytest.mark.parametrize("args, fragments", [
    (["--activation", "swish"], ["--activation", "swish"]),
    (["--optimizer", "lbfgs"], ["--optimizer", "lbfgs"]),
    (["--lr", "0"], ["--lr", "> 0"]),
    (["--lr", "nan"], ["--lr"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--epochs", "-1"], ["--epochs"]),
    (["--dropout", "1"], ["--dropout", "[0, 1)"]),
    (["--validation-fraction", "1.5"], ["--validation-fraction"]),
    (["--momentum", "0.9"], ["--momentum", "adam", "no momentum"]),
    (["--layers", "64,,10"], ["--layers", "784,30,10"]),
    (["--layers", "30,10"], ["--layers", "does not fit digits", "start with 64"]),
    (["--layers", "64,30,9"], ["--layers", "end with 10"]),
    (["--loss", "binary_cross_entropy", "--output-activation", "softmax"],
     ["--output-activation", "'sigmoid'"]),
    (["--resume"], ["--resume needs the --out folder"]),
])
def test_train_usage_errors(tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    assert_clean_failure(call_main("train", *args), 2, *fragments)
    assert list(tmp_path.iterdir()) == []  # no run folder, no model


def test_usage_error_in_a_subprocess(tmp_path):
    assert_clean_failure(run_cli("train", "--lr", "-0.5", cwd=tmp_path), 2, "--lr")
    assert list(tmp_path.iterdir()) == []


def test_unknown_command():
    assert_clean_failure(run_cli("fly"), 2, "fly")


def test_unknown_dataset(tmp_path):
    result = call_main("train", "--dataset", "imagenet", "--out", tmp_path / "out")
    assert_clean_failure(result, 1, "imagenet")
    assert not (tmp_path / "out").exists()


def test_out_folder_with_a_run_is_not_overwritten(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"")
    result = call_main("train", "--out", tmp_path)
    assert_clean_failure(result, 2, "already holds a run", "--resume")


@pytest.fixture(scope="module")
def idx_folder(tmp_path_factory):
    """The digits as a folder of the four IDX files, for corrupting."""
    data = load_dataset("digits", scale=False)
    folder = tmp_path_factory.mktemp("idx")
    for stem, X, y in (("train", data.X_train, data.y_train), ("t10k", data.X_test, data.y_test)):
        write_idx(folder / f"{stem}-images-idx3-ubyte", X.reshape(-1, 8, 8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte", y.astype(np.uint8))
    return folder


def _copy(folder, tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    for path in folder.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def _lie_about_count(path):
    data = bytearray(path.read_bytes())
    data[4:8] = (10**6).to_bytes(4, "big")
    path.write_bytes(bytes(data))


def _bad_magic(path):
    path.write_bytes(b"\x01\x02" + path.read_bytes()[2:])


@pytest.mark.parametrize("corrupt, file", [
    (_truncate, "train-images-idx3-ubyte"),
    (_lie_about_count, "train-images-idx3-ubyte"),
    (_bad_magic, "t10k-labels-idx1-ubyte"),
    (lambda p: p.write_bytes(b""), "t10k-images-idx3-ubyte"),
    (_truncate, "train-labels-idx1-ubyte"),  # fewer labels than images
])
def test_corrupt_idx_files(idx_folder, tmp_path, corrupt, file):
    data = _copy(idx_folder, tmp_path)
    corrupt(data / file)
    assert_clean_failure(call_main("train", "--dataset", data, "--out", tmp_path / "out"), 1)
    assert not (tmp_path / "out").exists()


def test_truncated_idx_file_in_a_subprocess(idx_folder, tmp_path):
    data = _copy(idx_folder, tmp_path)
    _truncate(data / "train-images-idx3-ubyte")
    result = run_cli("train", "--dataset", data, "--out", tmp_path / "out")
    assert_clean_failure(result, 1, "train-images-idx3-ubyte")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", [
    "1,2,0\n3,nan,1\n",
    "1,2,0\n3,inf,1\n",
    "1,2,0\n3,four,1\n",
    "1,2,0\n3,4\n",
    "",
])
def test_bad_csv_files(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = call_main("train", "--dataset", path, "--out", tmp_path / "out")
    assert_clean_failure(result, 1, "bad.csv")
    assert not (tmp_path / "out").exists()


# -- model files ---------------------------------------------------------------------------
@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.safetensors"
    mp.save(mp.MLP([64, 8, 10], "relu", "softmax", seed=0),
        path, metadata={"loss": {"name": "cross_entropy", "reduction": "mean"},
                        "training": {"dataset": "digits"}})
    return path


def _inconsistent(path):
    tensors = load_file(path)
    _, document = read_file(path)
    document["architecture"]["layers"][0]["n_out"] = 9
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(document)})


class _Trap:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("spoil", [
    lambda p: p.write_bytes(p.read_bytes()[:200]),  # truncated
    lambda p: p.write_bytes(np.random.default_rng(1).bytes(3000)),  # garbage
    lambda p: p.write_bytes(b""),  # empty
    _inconsistent,  # metadata that disagrees with the tensors
], ids=["truncated", "garbage", "empty", "inconsistent"])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_bad_model_files(model, tmp_path, spoil, command):
    spoil(model)
    samples = tmp_path / "x.csv"
    np.savetxt(samples, np.zeros((2, 64)), delimiter=",")
    args = [model] if command == "evaluate" else [model, samples]
    assert_clean_failure(call_main(command, *args), 1, "model.safetensors")


def test_truncated_model_in_a_subprocess(model):
    model.write_bytes(model.read_bytes()[:-100])
    assert_clean_failure(run_cli("evaluate", model), 1, "model.safetensors", "truncated")


def test_pickle_disguised_as_a_model_runs_no_code(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"layers.0.weight": _Trap(marker)}))
    assert_clean_failure(run_cli("evaluate", path), 1, "model.safetensors")
    assert not marker.exists()


def test_missing_model_file(tmp_path):
    assert_clean_failure(call_main("evaluate", tmp_path / "nope.safetensors"), 1,
                         "nope.safetensors", "No such file")


def test_predict_input_with_the_wrong_width(model, tmp_path):
    samples = tmp_path / "x.csv"
    np.savetxt(samples, np.zeros((2, 20)), delimiter=",")
    assert_clean_failure(call_main("predict", model, samples), 1, "expects 64")


def test_predict_output_suffix(model, tmp_path):
    result = call_main("predict", model, tmp_path / "x.csv", "--out", tmp_path / "y.txt")
    assert_clean_failure(result, 2, "--out", ".csv or .npy")
    assert not (tmp_path / "y.txt").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "evaluate", tmp_path / "nope.safetensors")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "FileNotFoundError" in result.stderr
