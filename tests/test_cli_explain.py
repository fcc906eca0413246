"""``matrixprop explain`` end to end: the default screen, the formats, a trained model, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main, run_cli

import matrixprop as mp
from matrixprop.data import load_dataset
from matrixprop.explain import random_sample


def test_no_options_explains_the_article_network_in_one_screen():
    result = run_cli("explain", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 50 and max(map(len, lines)) <= 100
    assert "network [2, 2, 2] (sigmoid x2), loss half_sse" in lines[0]
    for section in ("FORWARD PASS", "LOSS", "BACKWARD PASS", "GRADIENTS", "UPDATE",
                    "NEURON VIEW"):
        assert any(line.startswith(section) for line in lines), section
    # the same numbers as the library gives for the same seeded network and sample
    net = mp.MLP([2, 2, 2], activation="sigmoid", seed=0)
    x, y = random_sample(net, "half_sse", seed=0)
    assert result.stdout.rstrip("\n") == mp.explain(net, x, y, "half_sse").to_text()


def test_options_shape_the_network_and_the_json_is_complete():
    result = call_main("explain", "--layers", "3,4,3", "--activation", "tanh", "--loss",
                       "cross_entropy", "--seed", "5", "--format", "json", "--neuron", "1,4")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["network"] == {"sizes": [3, 4, 3], "activations": ["tanh", "softmax"]}
    assert data["loss_name"] == "cross_entropy"
    assert [np.array(layer["W"]).shape for layer in data["layers"]] == [(4, 3), (3, 4)]
    assert data["neuron"]["layer"] == 1 and data["neuron"]["index"] == 4
    assert data["neuron"]["agrees"] is True


def test_markdown_format():
    result = call_main("explain", "--format", "markdown", "--neuron", "none")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### Backpropagation on one sample")
    assert "$$" in result.stdout and "Neuron" not in result.stdout


def test_a_trained_model_on_one_dataset_sample(tmp_path):
    data = load_dataset("digits")
    net = mp.MLP([64, 12, 10], activation="relu", output_activation="softmax", seed=0)
    mp.fit(net, data.X_train, data.y_train, loss="cross_entropy", epochs=1, seed=0)
    path = tmp_path / "model.safetensors"
    mp.save(net, path, {"loss": {"name": "cross_entropy", "reduction": "mean"}})
    result = call_main("explain", "--model", path, "--dataset", "digits", "--index", "7",
                       "--format", "json")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    np.testing.assert_allclose(explained["x"], data.X_test[7], rtol=1e-6)
    assert explained["y"] == np.eye(10)[data.y_test[7]].tolist()
    expected = mp.explain(net, data.X_test[7], int(data.y_test[7]), "cross_entropy")
    assert explained["loss"] == pytest.approx(expected.loss, rel=1e-12)
    text = call_main("explain", "--model", path, "--dataset", "digits", "--index", "7")
    assert "W_1 = <12x64 matrix" in text.stdout  # a large layer, summarized


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (("--neuron", "3,1"), 2, "layer must be in [1, 2]"),
    (("--neuron", "1,9"), 2, "neuron of layer 1 must be in [1, 2]"),
    (("--neuron", "one"), 2, "LAYER,INDEX"),
    (("--layers", "2"), 2, "at least two positive widths"),
    (("--loss", "cross_entropy", "--output-activation", "sigmoid"), 2, "softmax"),
    (("--lr", "0"), 2, "lr"),
    (("--model", "missing.safetensors", "--layers", "2,2"), 2, "leave it out with --model"),
    (("--model", "missing.safetensors"), 1, "missing.safetensors"),
])
def test_bad_options_fail_in_one_line(args, code, fragment):
    assert_clean_failure(call_main("explain", *args), code, fragment)


def test_index_beyond_the_test_set(tmp_path):
    net = mp.MLP([64, 4, 10], output_activation="softmax", seed=0)
    path = tmp_path / "m.safetensors"
    mp.save(net, path)
    assert_clean_failure(call_main("explain", "--model", path, "--dataset", "digits",
                                   "--index", "100000"), 2, "test samples")
