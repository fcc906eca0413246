"""benchmarks/mnist_reproduce.py: its commands stay valid ``matrixprop train`` commands.

Each recipe's exact command runs for one epoch on a tiny folder of random MNIST-shaped IDX
files, so a change of the command line that breaks a documented reproduction fails here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _cli import call_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import mnist_reproduce  # noqa: E402
from matrixprop.data import write_idx  # noqa: E402

OUTPUTS = {"nielsen": "sigmoid", "chapter3": "sigmoid", "mlp": "softmax"}


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """60 training and 20 test images of random pixels, as the four MNIST IDX files."""
    folder = tmp_path_factory.mktemp("tiny-mnist")
    rng = np.random.default_rng(0)
    for stem, n in (("train", 60), ("t10k", 20)):
        write_idx(folder / f"{stem}-images-idx3-ubyte",
                  rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)
    return folder


@pytest.mark.filterwarnings("ignore:.*sha256 of the decompressed file")  # random pixels
@pytest.mark.parametrize("name", list(mnist_reproduce.RECIPES))
def test_each_recipe_is_a_valid_train_command(name, tiny_mnist, tmp_path):
    line = mnist_reproduce.command(mnist_reproduce.RECIPES[name], 3, tiny_mnist, 1,
                                   tmp_path / "run")
    assert line[:2] == ["matrixprop", "train"]
    line[line.index("--epochs") + 1] = "1"
    result = call_main(*line[1:])
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    config = metrics["config"]
    assert config["output_activation"] == OUTPUTS[name]
    assert config["seed"] == 3 and config["validation_fraction"] == 0
    assert metrics["dataset"]["n_train"] == 60 and metrics["dataset"]["n_test"] == 20


def test_recipes_follow_the_book():
    nielsen = dict(zip(*[iter(mnist_reproduce.RECIPES["nielsen"].options)] * 2, strict=True))
    assert nielsen == {"--layers": "784,30,10", "--activation": "sigmoid", "--loss": "half_sse",
                       "--reduction": "batchmean", "--optimizer": "sgd", "--lr": "3.0",
                       "--batch-size": "10", "--epochs": "30", "--init": "normal"}
    chapter3 = dict(zip(*[iter(mnist_reproduce.RECIPES["chapter3"].options)] * 2, strict=True))
    assert chapter3 == {"--layers": "784,100,10", "--activation": "sigmoid",
                        "--loss": "binary_cross_entropy", "--reduction": "batchmean",
                        "--l2": "5.0", "--optimizer": "sgd", "--lr": "0.1", "--batch-size": "10",
                        "--epochs": "60", "--init": "normal_scaled"}


def test_dry_run_prints_every_command_and_trains_nothing(tmp_path, capsys):
    mnist_reproduce.main(["--dry-run", "--seeds", "0", "1", "--out", str(tmp_path / "runs")])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(mnist_reproduce.RECIPES)
    assert all(line.startswith("$ matrixprop train --dataset mnist") for line in lines)
    assert "--data-dir" not in lines[0] and "--threads" not in lines[0]
    assert not (tmp_path / "runs").exists()


def test_markdown_table_of_runs():
    rows = [{"recipe": "chapter3", "seed": 1, "test_accuracy": 0.98214, "train_seconds": 66.4,
             "load_before": 4.14, "load_after": 3.3}]
    table = mnist_reproduce.markdown(rows).splitlines()
    assert len(table) == 3
    assert table[2].startswith("| chapter3 | 1 | 98.21% | 66 s | 4.1 / 3.3 | 98.04%")
