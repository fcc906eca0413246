"""mp.explain: every number against PyTorch autograd in float64 (an independent computation),
the finite differences, the neuron view, and the text, markdown and JSON renderings."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _torch_reference import TorchTwin, as_targets, torch_loss
from markdown_it import MarkdownIt
from matplotlib import mathtext

import matrixprop as mp
from matrixprop.explain import Explanation, explain, random_sample

# (sizes, hidden activation, output activation, loss, reduction)
CASES = [
    ([2, 2, 2], "sigmoid", None, "half_sse", "mean"),  # the article's network
    ([2, 3, 2], "sigmoid", None, "half_sse", "sum"),
    ([3, 4, 3], "tanh", "softmax", "cross_entropy", "mean"),  # fused softmax delta
    ([4, 5, 3, 2], "relu", "identity", "mse", "sum"),
    ([3, 4, 3], "gelu", "softmax", "half_sse", "mean"),  # softmax through its Jacobian
    ([2, 3, 3], "leaky_relu", "softmax", "mse", "mean"),
    ([3, 4, 1], "elu", "sigmoid", "binary_cross_entropy", "mean"),
    ([3, 2, 4, 2], "softplus", "tanh", "half_sse", "batchmean"),
]
LR = 0.3


def reference(net, x, y, loss, reduction, lr=LR):
    """z, a, delta = dL/dz, dW, db per layer, the loss and the loss after one SGD step, by
    PyTorch autograd on a float64 twin of ``net``."""
    model = TorchTwin(net.astype(np.float64))
    X = torch.tensor(np.asarray(x, dtype=np.float64)[None, :])
    Y = torch.tensor(as_targets(np.asarray(y)[None, ...], net.n_outputs))
    zs, A = model.pre_activations(X)
    for z in zs:
        z.retain_grad()
    value = torch_loss(A, Y, loss, reduction)
    value.backward()
    activations, a = [], X
    for z, f in zip(zs, model.functions, strict=True):
        a = f(z)
        activations.append(a.detach().numpy()[0])
    layers = [{"z": z.detach().numpy()[0], "a": act, "delta": z.grad.numpy()[0],
               "dW": linear.weight.grad.numpy(), "db": linear.bias.grad.numpy(),
               "W": linear.weight.detach().numpy().copy()}
              for z, act, linear in zip(zs, activations, model.layers, strict=True)]
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
        after = torch_loss(model(X), Y, loss, reduction).item()
    return value.item(), after, layers


def make(case, seed=0):
    sizes, hidden, output, loss, reduction = case
    net = mp.MLP(sizes, activation=hidden, output_activation=output, seed=seed)
    x, y = random_sample(net, loss, seed=seed)
    return net, x, y, mp.losses.get(loss, reduction)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[3]}-{c[4]}")
def test_numbers_equal_autograd(case):
    net, x, y, loss = make(case)
    e = mp.explain(net, x, y, loss, lr=LR)
    value, after, layers = reference(net, x, y, case[3], case[4])
    assert e.loss == pytest.approx(value, rel=1e-12)
    assert e.loss_after == pytest.approx(after, rel=1e-10)
    assert len(e.layers) == len(layers)
    for step, ref in zip(e.layers, layers, strict=True):
        for key in ("W", "z", "a", "delta", "dW", "db"):
            np.testing.assert_allclose(getattr(step, key), ref[key], rtol=1e-10, atol=1e-13,
                                       err_msg=f"layer {step.number} {key}")
        np.testing.assert_allclose(step.W_updated, ref["W"] - LR * ref["dW"], rtol=1e-12)
        np.testing.assert_allclose(step.b_updated, step.b - LR * ref["db"], rtol=1e-12,
                                   atol=1e-15)
        # the matrix-form identities the explanation prints
        a_prev = e.x if step.number == 1 else e.layers[step.number - 2].a
        np.testing.assert_allclose(step.dW, np.outer(step.delta, a_prev), rtol=1e-10,
                                   atol=1e-15)
        np.testing.assert_allclose(step.db, step.delta, rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_deltas_follow_the_backward_rules(case):
    net, x, y, loss = make(case, seed=3)
    e = mp.explain(net, x, y, loss)
    for step, following in zip(e.layers[:-1], e.layers[1:], strict=True):
        np.testing.assert_allclose(step.upstream, following.W.T @ following.delta, rtol=1e-12)
        np.testing.assert_allclose(step.delta, step.f_prime * step.upstream, rtol=1e-10,
                                   atol=1e-15)
    last = e.layers[-1]
    if case[2] == "softmax":  # the Jacobian diag(s) - s s^T, and delta_L = J^T dL/da_L
        s = last.a
        np.testing.assert_allclose(last.f_prime, np.diag(s) - np.outer(s, s), rtol=1e-12)
        np.testing.assert_allclose(last.delta, last.f_prime.T @ last.upstream, rtol=1e-9,
                                   atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_finite_differences_agree(case):
    net, x, y, loss = make(case, seed=1)
    e = mp.explain(net, x, y, loss)
    for step in e.layers:
        assert not np.isnan(step.dW_numeric).any()  # small layers: every entry checked
        assert step.fd_coverage() == (step.dW.size + step.db.size,) * 2
        errors = step.fd_errors()
        assert set(errors) == {"W", "b"}
        assert max(errors.values()) < 1e-6, errors
        np.testing.assert_allclose(step.dW_numeric, step.dW, rtol=1e-5, atol=1e-9)


def test_finite_differences_limit_checks_a_subset():
    net = mp.MLP([30, 8, 2], seed=0)
    x, y = random_sample(net, "half_sse")
    e = mp.explain(net, x, y, finite_differences=20)
    first = e.layers[0]
    assert first.fd_coverage() == (20 + 8, 240 + 8)
    checked = ~np.isnan(first.dW_numeric)
    np.testing.assert_allclose(first.dW_numeric[checked], first.dW[checked], rtol=1e-5,
                               atol=1e-10)


def test_article_final_formula_is_the_vector_form_not_the_norm():
    """dL/dW_3 = [(x_3 - y) * f_3'(z_3)] x_2^T; the article's ||x_3 - y|| factor is wrong."""
    net = mp.MLP([2, 3, 3, 2], activation="sigmoid", seed=4)
    x, y = np.array([0.3, -0.7]), np.array([0.9, 0.1])
    e = mp.explain(net, x, y, mp.losses.get("half_sse", "sum"))
    x3, x2 = e.layers[2].a, e.layers[1].a
    f3_prime = x3 * (1 - x3)
    vector_form = np.outer((x3 - y) * f3_prime, x2)
    norm_form = np.linalg.norm(x3 - y) * np.outer(f3_prime, x2)
    np.testing.assert_allclose(e.layers[2].dW, vector_form, rtol=1e-10)
    assert not np.allclose(e.layers[2].dW, norm_form, rtol=1e-3)
    assert "a vector, not the norm ||a_3 - y||" in e.to_text()
    assert r"not the norm $\Vert a_{3} - y\Vert$" in e.to_markdown()


# -- the neuron view ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES[:5], ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_neuron_view_is_the_scalar_chain_rule(case):
    net, x, y, loss = make(case, seed=2)
    e = mp.explain(net, x, y, loss)
    _, _, layers = reference(net, x, y, case[3], case[4], lr=0.5)
    for k in range(1, len(e.layers)):  # hidden layers, numbered from 1
        for j in range(1, e.layers[k - 1].z.size + 1):
            view = e.neuron_view(k, j)
            W_next, delta_next = layers[k]["W"], layers[k]["delta"]
            f_prime = e.layers[k - 1].f_prime[j - 1]
            expected = f_prime * sum(W_next[i, j - 1] * delta_next[i]
                                     for i in range(delta_next.size))
            assert view.delta == pytest.approx(expected, rel=1e-10, abs=1e-15)
            assert view.delta == pytest.approx(layers[k - 1]["delta"][j - 1], rel=1e-9,
                                               abs=1e-15)
            np.testing.assert_array_equal(view.weights, W_next[:, j - 1])
            np.testing.assert_allclose(view.terms, W_next[:, j - 1] * delta_next, rtol=1e-10)
            np.testing.assert_allclose(view.weight_gradient, layers[k - 1]["dW"][j - 1],
                                       rtol=1e-9, atol=1e-15)
            assert view.agrees()


def test_output_neuron_view_takes_delta_from_the_loss():
    net, x, y, loss = make(CASES[0])
    e = mp.explain(net, x, y, loss, neuron=(2, 2))
    view = e.neuron_view(2, 2)
    assert view.is_output and view.terms is None
    assert view.delta == e.layers[1].delta[1]
    np.testing.assert_allclose(view.weight_gradient, e.layers[1].dW[1], rtol=1e-12)
    assert "an output neuron" in e.to_text()


@pytest.mark.parametrize(("neuron", "error"), [
    ((0, 1), ValueError), ((3, 1), ValueError), ((1, 3), ValueError), ((1, 0), ValueError),
    ((1.0, 1), TypeError), ((True, 1), TypeError),
])
def test_bad_neuron_is_refused(neuron, error):
    net, x, y, loss = make(CASES[0])
    with pytest.raises(error, match="layer|neuron"):
        mp.explain(net, x, y, loss, neuron=neuron)


# -- inputs ------------------------------------------------------------------------------------
def test_the_network_is_left_untouched_and_float32_is_explained_in_float64():
    net = mp.MLP([2, 2, 2], seed=0)
    before = net.params.copy()
    e = mp.explain(net, [0.5, -0.2], [0.1, 0.9])
    np.testing.assert_array_equal(net.params, before)
    assert net.params.dtype == np.float32
    assert e.layers[0].W.dtype == np.float64
    np.testing.assert_array_equal(e.layers[0].W, net.state_dict()["layers.0.weight"])


def test_class_label_target_and_default_losses():
    net = mp.MLP([3, 4, 3], activation="relu", output_activation="softmax", seed=0)
    e = mp.explain(net, [0.1, 0.2, 0.3], 2)
    assert e.loss_name == "cross_entropy"
    np.testing.assert_array_equal(e.y, [0, 0, 1])
    assert mp.explain(mp.MLP([2, 2, 2], seed=0), [0, 1], [0, 1]).loss_name == "half_sse"


@pytest.mark.parametrize(("x", "y", "error", "match"), [
    ([[0.1, 0.2], [0.3, 0.4]], [0.1, 0.9], ValueError, "one sample"),
    ([0.1, 0.2, 0.3], [0.1, 0.9], ValueError, "features"),
    ([0.1, np.nan], [0.1, 0.9], ValueError, "NaN"),
    ([0.1, 0.2], [0.1, 0.9, 0.5], ValueError, "Y must have shape"),
])
def test_bad_samples_are_refused(x, y, error, match):
    with pytest.raises(error, match=match):
        mp.explain(mp.MLP([2, 2, 2], seed=0), x, y)


def test_bad_arguments_are_refused():
    net = mp.MLP([2, 2, 2], seed=0)
    with pytest.raises(TypeError, match="Network"):
        mp.explain("net", [0, 1], [0, 1])
    with pytest.raises(ValueError, match="lr"):
        mp.explain(net, [0, 1], [0, 1], lr=-1.0)
    with pytest.raises(ValueError, match="cross_entropy"):
        mp.explain(net, [0, 1], [0, 1], loss="cross_entropy")


# -- formats -----------------------------------------------------------------------------------
def _bracketed(text: str, name: str, start: int = 0) -> tuple[str, int]:
    """The bracketed value after ``name = `` (possibly over several lines)."""
    at = text.index(f"{name} = [", start) + len(name) + 3
    depth, end = 0, at
    for end in range(at, len(text)):
        depth += {"[": 1, "]": -1}.get(text[end], 0)
        if depth == 0:
            break
    return text[at:end + 1], end


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_text_numbers_equal_autograd(case):
    net, x, y, loss = make(case)
    e = mp.explain(net, x, y, loss)
    text = e.to_text()
    value, _, layers = reference(net, x, y, case[3], case[4])
    assert f"= {value:.4g}" in text
    for k, ref in enumerate(layers, start=1):
        for name, key in ((f"z_{k}", "z"), (f"a_{k}", "a"), (f"delta_{k}", "delta"),
                          (f"dL/dW_{k}", "dW"), (f"dL/db_{k}", "db"), (f"W_{k}", "W")):
            shown, _ = _bracketed(text, name)
            np.testing.assert_allclose(_floats(shown), ref[key].ravel(), rtol=6e-4,
                                       atol=1e-12, err_msg=name)


def test_text_of_the_article_network_fits_one_screen():
    for sizes in ([2, 2, 2], [2, 3, 2]):
        net = mp.MLP(sizes, activation="sigmoid", seed=0)
        x, y = random_sample(net, "half_sse")
        lines = mp.explain(net, x, y, "half_sse").to_text().splitlines()
        assert len(lines) <= 50
        assert max(map(len, lines)) <= 100
        assert lines[0].startswith("Backpropagation")


def test_large_layers_are_summarized_in_text_and_markdown_but_not_in_json():
    net = mp.MLP([40, 30, 3], activation="relu", output_activation="softmax", seed=0)
    x, y = random_sample(net, "cross_entropy")
    e = mp.explain(net, x, y, finite_differences=16)
    text, markdown = e.to_text(), e.to_markdown()
    assert "W_1 = <30x40 matrix: min" in text
    W = e.layers[0].W
    assert f"max {W.max():.4g}" in text and f"norm {np.linalg.norm(W):.4g}" in text
    assert r"30\times40\ \mathrm{matrix}" in markdown
    assert "32 of 1230 entries checked" in text and "32 of 1230 entries checked" in markdown
    data = json.loads(e.to_json())
    np.testing.assert_array_equal(np.array(data["layers"][0]["W"]), W)
    assert np.array(data["layers"][0]["dW"]).shape == (30, 40)


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_json_holds_every_array_in_full(case):
    net, x, y, loss = make(case)
    e = mp.explain(net, x, y, loss)
    data = json.loads(e.to_json(indent=1))
    value, _, layers = reference(net, x, y, case[3], case[4])
    assert {"x", "y", "loss", "layers"} <= set(data)
    assert data["loss"] == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(data["x"], x)
    for entry, ref in zip(data["layers"], layers, strict=True):
        assert {"W", "b", "z", "a", "delta", "dW", "db"} <= set(entry)
        for key in ("W", "z", "a", "delta", "dW", "db"):
            np.testing.assert_allclose(np.array(entry[key]), ref[key], rtol=1e-10, atol=1e-13)
    assert data["neuron"]["agrees"] is True
    assert data == e.to_dict()


def test_json_writes_unchecked_finite_differences_as_null():
    net = mp.MLP([30, 4, 2], seed=0)
    x, y = random_sample(net, "half_sse")
    data = json.loads(mp.explain(net, x, y, finite_differences=5).to_json())
    flat = np.array(data["layers"][0]["dW_numeric"], dtype=object).ravel()
    assert sum(v is None for v in flat) == 120 - 5


_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)


def _math_pieces(markdown: str) -> list[str]:
    return [m[1] or m[2] for m in _MATH.finditer(markdown)]


@pytest.mark.parametrize(("case", "neuron"), [
    (CASES[0], (1, 2)),  # the article's network: elementwise output delta, a hidden neuron
    (CASES[4], (2, 1)),  # softmax through its Jacobian, an output neuron
    (([20, 30, 4], "relu", "softmax", "cross_entropy", "mean"), (1, 2)),  # summarized layers
], ids=["article", "jacobian", "summarized"])
def test_markdown_parses_and_every_formula_renders(case, neuron):
    net, x, y, loss = make(case)
    e = mp.explain(net, x, y, loss, neuron=neuron)
    markdown = e.to_markdown()
    assert e._repr_markdown_() == markdown
    html = MarkdownIt("commonmark").render(markdown)
    assert html.count("<h3>") == 1 and html.count("<h4>") == 6
    pieces = _math_pieces(markdown)
    assert len(pieces) > 20 and all(piece.strip() for piece in pieces)
    # mathtext raises ValueError on any construct it cannot typeset; one image holds them all
    image = io.BytesIO()
    mathtext.math_to_image(" ".join(f"${piece}$" for piece in pieces), image, dpi=20,
                           format="png")
    assert image.getvalue().startswith(b"\x89PNG")


def test_mathtext_check_catches_latex_it_cannot_typeset():
    with pytest.raises(ValueError):
        mathtext.math_to_image(r"$\begin{bmatrix}1\end{bmatrix}$", io.BytesIO(), format="png")


def test_markdown_numbers_equal_autograd():
    case = CASES[2]
    net, x, y, loss = make(case)
    markdown = mp.explain(net, x, y, loss).to_markdown()
    _, _, layers = reference(net, x, y, case[3], case[4])
    for k, ref in enumerate(layers, start=1):
        for key, follows in (("z", rf",\qquad a_{{{k}}} = "), ("delta", "$$")):
            # the last bracket before the text that follows the value in its formula
            ends = markdown.index(follows, markdown.index(rf"\delta_{{{k}}} = \left[")
                                  if key == "delta" else 0)
            value = markdown[markdown.rindex(r"\left[", 0, ends):ends]
            numbers = _floats(value.replace(r"\substack", ""))
            np.testing.assert_allclose(numbers, ref[key], rtol=6e-4, err_msg=f"{key}_{k}")


def test_string_forms():
    net, x, y, loss = make(CASES[0])
    e = mp.explain(net, x, y, loss)
    assert isinstance(e, Explanation)
    assert str(e) == e.to_text()
    assert mp.explain is explain and "explain" in mp.__all__  # exported at the top level


def test_docs_give_the_corrected_formula():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "explain.md").read_text()
    corrected = r"\frac{\partial L}{\partial W_3} = \left[(x_3 - y) \odot f_3'(z_3)\right] x_2^\top"
    assert corrected in docs
    mathtext.math_to_image(f"${corrected}$", io.BytesIO(), format="png", dpi=20)
    assert r"the norm $\Vert x_3 - y\Vert$" in docs
