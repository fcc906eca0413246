"""``matrixprop export MODEL --format onnx --out FILE``."""

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main, run_cli

import matrixprop as mp

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


@pytest.fixture
def model(tmp_path):
    net = mp.MLP([6, 5, 3], "tanh", "softmax", seed=0)
    return net, mp.save(net, tmp_path / "model.safetensors")


def test_export_writes_an_onnx_model_that_predicts_like_the_network(model, tmp_path):
    net, path = model
    out = tmp_path / "model.onnx"
    result = run_cli("export", path, "--format", "onnx", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    X = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["output"], {"input": X})[0], net.predict(X),
                               rtol=1e-5, atol=1e-6)


def test_bad_export_requests(model, tmp_path):
    _, path = model
    out = tmp_path / "model.onnx"
    assert_clean_failure(call_main("export", path, "--format", "tflite", "--out", out), 2,
                         "--format", "tflite", "onnx")
    assert_clean_failure(call_main("export", path), 2, "--out")
    assert_clean_failure(call_main("export", tmp_path / "missing.safetensors", "--out", out), 1,
                         "missing.safetensors")
    assert not out.exists()
