"""ONNX export, checked by running the exported graphs in onnxruntime."""

import numpy as np
import pytest

import matrixprop as mp
import matrixprop.onnx
from matrixprop.activations import Activation
from matrixprop.sklearn import MLPClassifier, MLPRegressor

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
HIDDEN = ["identity", "sigmoid", "tanh", "relu", {"name": "leaky_relu", "negative_slope": 0.2},
          {"name": "elu", "alpha": 0.7}, "softplus", "gelu"]


def run(path, inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": inputs})[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_exported_graph_computes_predict(tmp_path, hidden, output, dtype):
    net = mp.MLP([5, 8, 6, 3], hidden, output, seed=0, dtype=dtype)
    path = mp.onnx.export(net, tmp_path / "net.onnx")
    outputs = run(path, X)
    assert outputs.dtype == np.float32 and outputs.shape == (64, 3)
    np.testing.assert_allclose(outputs, net.predict(X), rtol=1e-5, atol=1e-5)


def test_graph_layout(tmp_path):
    layers = [mp.Dense(5, 4, "relu", dropout=0.5), mp.Dense(4, 4, "identity", bias=False),
              mp.Dense(4, 2, "softmax")]
    net = mp.Network(layers, seed=0)
    path = mp.onnx.export(net, tmp_path / "net.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # no temporary file left
    model = onnx.load(path)
    assert [node.op_type for node in model.graph.node] == ["Gemm", "Relu", "Gemm", "Gemm",
                                                           "Softmax"]
    assert [len(node.input) for node in model.graph.node if node.op_type == "Gemm"] == [3, 2, 3]
    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    assert (graph_input.name, graph_output.name) == ("input", "output")
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (graph_input, graph_output)]
    assert dims == [["batch", 5], ["batch", 2]]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    np.testing.assert_allclose(run(path, X), net.predict(X), rtol=1e-5, atol=1e-6)  # no dropout


def test_fitted_estimators_export_their_network(tmp_path):
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    probabilities = run(mp.onnx.export(clf.network_, tmp_path / "clf.onnx"), X)
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    reg.fit(X, np.exp(X[:, 0]))
    rates = run(mp.onnx.export(reg.network_, tmp_path / "reg.onnx"), X)
    np.testing.assert_allclose(rates[:, 0], reg.predict(X), rtol=1e-5)


def test_an_activation_without_operator_is_refused(tmp_path):
    class Cube(Activation):
        name = "cube"

        def forward(self, Z, out):
            return np.power(Z, 3, out=out)

    net = mp.Network([mp.Dense(2, 2, Cube())])
    with pytest.raises(ValueError, match="activation 'cube' has no ONNX operator"):
        mp.onnx.export(net, tmp_path / "net.onnx")
    assert not any(tmp_path.iterdir())
