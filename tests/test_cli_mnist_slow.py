"""Acceptance on full MNIST (slow: run with ``pytest -m slow``)."""

import json

import pytest
from _cli import MNIST, run_cli


@pytest.mark.slow
def test_three_epochs_of_nielsens_network_reach_93_percent(tmp_path):
    """Nielsen's first network: [784, 30, 10] sigmoid, half SSE averaged over the batch, SGD
    with lr 3.0 on batches of 10, N(0, 1) initial weights and biases, 3 epochs.

    After 3 epochs single runs land between about 92.7% and 93.5% depending on the seed (the
    N(0, 1) start saturates some sigmoids), so, as the book reports its figures, the best of
    three seeds must reach 93%.
    """
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the shared MNIST files are absent ({MNIST})")
    accuracies = []
    for seed in range(3):
        result = run_cli(
            "train", "--dataset", "mnist", "--data-dir", MNIST.parent, "--layers", "784,30,10",
            "--activation", "sigmoid", "--loss", "half_sse", "--reduction", "batchmean",
            "--optimizer", "sgd", "--lr", "3.0", "--batch-size", "10", "--epochs", "3",
            "--init", "normal", "--validation-fraction", "0", "--seed", seed,
            "--out", tmp_path / f"run{seed}", "--json", timeout=1200)
        assert result.returncode == 0, result.stderr
        metrics = json.loads(result.stdout)
        assert metrics["config"]["output_activation"] == "sigmoid"  # half_sse keeps the hidden f
        assert metrics["dataset"]["n_train"] == 60_000 and metrics["dataset"]["n_test"] == 10_000
        accuracies.append(metrics["test_accuracy"])
    assert max(accuracies) >= 0.93, accuracies
    assert min(accuracies) >= 0.90, accuracies
