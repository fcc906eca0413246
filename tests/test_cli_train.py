"""The command end to end on small data: train, evaluate, predict, resume."""

import csv
import json

import numpy as np
import pytest
from _cli import MNIST, run_cli
from safetensors.numpy import load_file

import matrixprop as mp
from matrixprop.data import load_dataset, read_idx, write_idx

FILES = {"model.safetensors", "metrics.json", "history.csv", "curves.png",
         "checkpoint.safetensors"}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``matrixprop train`` with no options at all: the README's main command."""
    cwd = tmp_path_factory.mktemp("default")
    result = run_cli("train", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (out,) = (cwd / "runs").iterdir()
    return out, result


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_default_train_writes_every_file_and_reaches_95_percent(default_run):
    out, result = default_run
    assert {p.name for p in out.iterdir()} == FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95
    assert f"{metrics['test_accuracy']:.4f}" in result.stdout  # printed in the final table
    assert "test accuracy" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_metrics_json_content_and_types(default_run):
    out, _ = default_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    for key in ("test_loss", "train_seconds", "samples_per_second"):
        assert isinstance(metrics[key], float) and metrics[key] > 0, key
    config = metrics["config"]
    assert config["layers"] == [64, 64, 10]
    assert config["output_activation"] == "softmax"  # cross-entropy's natural output
    assert config["optimizer"]["name"] == "adam" and config["optimizer"]["lr"] == 0.001
    assert metrics["epochs"] == config["epochs"]
    # numba is installed here, and the progress bar's per-batch updates run compiled too
    assert metrics["engine"] == {"name": "compiled", "why_not_compiled": None}
    assert metrics["dataset"]["n_train"] + metrics["dataset"]["n_validation"] == 1437
    assert metrics["versions"]["numpy"] == np.__version__
    assert metrics["versions"]["matrixprop"] == mp.__version__


def test_history_csv_and_curves(default_run):
    out, _ = default_run
    metrics = json.loads((out / "metrics.json").read_text())
    with open(out / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == list(range(1, metrics["epochs"] + 1))
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(metrics["final"]["val_accuracy"])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_file_reproduces_the_test_accuracy(default_run, digits):
    out, _ = default_run
    metrics = json.loads((out / "metrics.json").read_text())
    net = mp.load(out / "model.safetensors")
    predicted = net.predict(digits.X_test).argmax(axis=1)
    assert np.mean(predicted == digits.y_test) == metrics["test_accuracy"]


def test_evaluate_json(default_run, digits):
    out, _ = default_run
    metrics = json.loads((out / "metrics.json").read_text())
    result = run_cli("evaluate", out / "model.safetensors", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"] == "digits"  # recorded in the model file
    assert report["accuracy"] == metrics["test_accuracy"]
    assert report["loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum(axis=1).tolist() == np.bincount(digits.y_test, minlength=10).tolist()
    assert np.trace(matrix) / matrix.sum() == report["accuracy"]


def test_evaluate_table(default_run):
    out, _ = default_run
    result = run_cli("evaluate", out / "model.safetensors", "--dataset", "digits")
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout


def test_predict_csv_and_npz_inputs(default_run, digits, tmp_path):
    out, _ = default_run
    model = out / "model.safetensors"
    expected = mp.load(model).predict(digits.X_test)
    features = tmp_path / "features.csv"  # features only
    np.savetxt(features, digits.X_test, fmt="%.9g", delimiter=",")
    with_target = tmp_path / "with_target.csv"  # a last target column, ignored
    np.savetxt(with_target, np.column_stack([digits.X_test, digits.y_test]), fmt="%.9g",
               delimiter=",")
    archive = tmp_path / "samples.npz"
    np.savez(archive, X=digits.X_test, y=digits.y_test)

    result = run_cli("predict", model, features, "--out", tmp_path / "p.npy")
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.load(tmp_path / "p.npy"), expected)

    result = run_cli("predict", model, with_target, "--classes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "class"
    assert [int(c) for c in lines[1:]] == expected.argmax(axis=1).tolist()

    result = run_cli("predict", model, archive, "--out", tmp_path / "p.csv")
    assert result.returncode == 0, result.stderr
    probabilities = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert np.allclose(probabilities, expected, rtol=1e-6, atol=1e-9)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_predict_features_only_inputs(default_run, digits, tmp_path):
    """An NPZ archive with no y and CSV files of features alone, with and without a header."""
    out, _ = default_run
    model = out / "model.safetensors"
    expected = mp.load(model).predict(digits.X_test).argmax(axis=1).tolist()
    archive = tmp_path / "x_only.npz"
    np.savez(archive, X=digits.X_test)
    bare = tmp_path / "bare.csv"
    np.savetxt(bare, digits.X_test, fmt="%.9g", delimiter=",")
    named = tmp_path / "named.csv"
    header = ",".join(f"pixel{k}" for k in range(digits.X_test.shape[1]))
    np.savetxt(named, digits.X_test, fmt="%.9g", delimiter=",", header=header, comments="")
    for samples in (archive, bare, named):
        result = run_cli("predict", model, samples, "--classes")
        assert result.returncode == 0, (samples.name, result.stderr)
        assert [int(c) for c in result.stdout.split()[1:]] == expected, samples.name


def _train(out, epochs, *extra):
    result = run_cli("train", "--dtype", "float64", "--dropout", "0.2", "--batch-size", "16",
                     "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--seed", "3",
                     "--epochs", epochs, "--out", out, "--threads", 1, "--no-progress", "--json",
                     *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight = _train(tmp_path / "straight", 4)
    _train(tmp_path / "resumed", 2)
    resumed = _train(tmp_path / "resumed", 4, "--resume")
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].dtype == np.float64 for k in a)
    assert all(np.array_equal(a[k], b[k]) for k in a)  # bit for bit
    assert resumed["test_loss"] == straight["test_loss"]
    assert resumed["epochs"] == 4 and resumed["config"] == straight["config"]
    with open(tmp_path / "resumed" / "history.csv") as handle:
        losses = [float(row["val_loss"]) for row in csv.DictReader(handle)]
    with open(tmp_path / "straight" / "history.csv") as handle:
        assert losses == [float(row["val_loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def mnist_subset(tmp_path_factory):
    """A few hundred MNIST images as a folder of IDX files (skipped without the shared data)."""
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the shared MNIST files are absent ({MNIST})")
    folder = tmp_path_factory.mktemp("mnist-small")
    for stem, n in (("train", 400), ("t10k", 100)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{stem}-{kind}-ubyte"
            write_idx(folder / name, read_idx(MNIST / f"{name}.gz")[:n])
    return folder


def test_train_and_predict_on_idx_files(mnist_subset, tmp_path):
    result = run_cli("train", "--dataset", mnist_subset, "--layers", "784,16,10", "--epochs", 3,
                     "--out", tmp_path / "run", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["dataset"]["n_test"] == 100 and metrics["dataset"]["n_features"] == 784
    assert metrics["test_accuracy"] > 0.5  # 360 training images, 3 epochs: far above chance
    images = mnist_subset / "t10k-images-idx3-ubyte"
    result = run_cli("predict", tmp_path / "run" / "model.safetensors", images, "--classes",
                     "--out", tmp_path / "classes.npy")
    assert result.returncode == 0, result.stderr
    net = mp.load(tmp_path / "run" / "model.safetensors")
    expected = net.predict(read_idx(images).reshape(100, -1) / 255.0).argmax(axis=1)
    assert np.array_equal(np.load(tmp_path / "classes.npy"), expected)


def test_threads_limit_the_compiled_engines_blas_too():
    """SciPy's BLAS (the compiled engine's) is loaded before the limit, so the limit holds it."""
    import subprocess
    import sys

    code = ("from threadpoolctl import threadpool_info\n"
            "from matrixprop.cli.train import _blas_threads\n"
            "with _blas_threads(1):\n"
            "    import matrixprop.accelerated._kernels\n"
            "    pools = [p for p in threadpool_info() if p['user_api'] == 'blas']\n"
            "print(len(pools), sorted({p['num_threads'] for p in pools}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["2", "[1]"]  # NumPy's and SciPy's OpenBLAS, both at one thread
