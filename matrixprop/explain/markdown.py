"""The markdown rendering of an :class:`~matrixprop.explain.Explanation`, with LaTeX math.

Display math is written ``$$ ... $$`` on its own line, inline math ``$ ... $``: both render on
GitHub and in Jupyter. The LaTeX keeps to what matplotlib's mathtext also understands (see
:mod:`.numbers`), so every formula can be checked without a TeX installation.
"""

from __future__ import annotations

import numpy as np

from .formulas import (
    activation_summary,
    activation_tex,
    loss_formula,
    loss_gradient_formula,
    output_delta_formula,
)
from .neuron import NeuronView
from .numbers import is_summarized, tex_array, tex_number

__all__ = ["render_markdown"]

_MAX_TERMS = 4


def _display(*parts: str) -> str:
    return "$$" + r",\qquad ".join(parts) + "$$"


def _partial(of: str, by: str) -> str:
    return rf"\frac{{\partial {of}}}{{\partial {by}}}"


def render_markdown(explanation, max_entries: int = 24) -> str:
    """The explanation as markdown; arrays with more than ``max_entries`` are summarized."""
    e = explanation
    n = len(e.layers)

    def arr(array, row=False):
        return tex_array(array, max_entries, row=row)

    blocks = [
        "### Backpropagation on one sample",
        f"Network `{e.sizes}` ({activation_summary(e.layers)}); loss `{e.loss_name}` "
        f"(reduction `{e.reduction}`). Layer $k$ has the weights $W_k$ "
        f"(`layers.{{k-1}}.weight` in the code), $a_0 = x$ and $a_{{{n}}}$ is the output.",
        _display(f"x = a_0 = {arr(e.x)}", f"y = {arr(e.y)}"),
        "#### Forward pass: $z_k = W_k a_{k-1} + b_k$, $a_k = f_k(z_k)$",
    ]
    for step in e.layers:
        k, f = step.number, activation_tex(step.activation)
        bias = "" if step.b is None else f" + {arr(step.b)}"
        blocks.append(f"Layer {k}: $W_{{{k}}}$ is {step.W.shape[0]} × {step.W.shape[1]}, "
                      f"$f_{{{k}}}$ is {step.activation}.")
        blocks.append(_display(f"z_{{{k}}} = W_{{{k}}} a_{{{k - 1}}} + b_{{{k}}} = "
                               f"{arr(step.W)}{arr(e.x if k == 1 else e.layers[k - 2].a)}"
                               f"{bias} = {arr(step.z)}",
                               f"a_{{{k}}} = {f}(z_{{{k}}}) = {arr(step.a)}"))
    blocks += ["#### Loss",
               _display(f"L = {loss_formula(e.loss_name, e.loss_scale, n, tex=True)} = "
                        f"{tex_number(e.loss)}")]
    blocks += _backward(e, arr)
    blocks += _gradients(e, arr, max_entries)
    blocks += _update(e, arr)
    if e.neuron is not None:
        blocks += _neuron(e.neuron_view(*e.neuron), arr)
    return "\n\n".join(blocks) + "\n"


def _backward(e, arr) -> list[str]:
    n, last = len(e.layers), e.layers[-1]
    blocks = [r"#### Backward pass: $\delta_k = \partial L / \partial z_k$",
              f"Output layer: ${output_delta_formula(e.delta_rule, e.loss_scale, n, tex=True)}$"
              + (" (the fused shortcut of this output and loss)." if e.delta_rule == "fused"
                 else ".")]
    gradient = loss_gradient_formula(e.loss_name, e.loss_scale, n, tex=True)
    if e.delta_rule == "fused":
        blocks.append(_display(rf"\delta_{{{n}}} = {arr(last.delta)}"))
    else:
        if gradient is not None:
            note = (rf" — a vector, not the norm $\Vert a_{{{n}}} - y\Vert$"
                    if e.loss_name == "half_sse" else "")
            blocks.append(f"Here ${_partial('L', f'a_{{{n}}}')} = {gradient}${note}.")
        prime = (rf"J_{{\mathrm{{softmax}}}}(z_{{{n}}})" if e.delta_rule == "jacobian"
                 else f"f_{{{n}}}'(z_{{{n}}})")
        blocks.append(_display(f"{_partial('L', f'a_{{{n}}}')} = {arr(last.upstream)}",
                               f"{prime} = {arr(last.f_prime)}",
                               rf"\delta_{{{n}}} = {arr(last.delta)}"))
    for step in reversed(e.layers[:-1]):
        k = step.number
        blocks.append(rf"Layer {k}: $\delta_{{{k}}} = f_{{{k}}}'(z_{{{k}}}) \odot "
                      rf"(W_{{{k + 1}}}^\top \delta_{{{k + 1}}})$.")
        blocks.append(_display(rf"W_{{{k + 1}}}^\top \delta_{{{k + 1}}} = {arr(step.upstream)}",
                               f"f_{{{k}}}'(z_{{{k}}}) = {arr(step.f_prime)}",
                               rf"\delta_{{{k}}} = {arr(step.delta)}"))
    return blocks


def _gradients(e, arr, max_entries: int) -> list[str]:
    blocks = [r"#### Gradients: $\partial L / \partial W_k = \delta_k a_{k-1}^\top$, "
              r"$\partial L / \partial b_k = \delta_k$",
              "Beside each gradient, its central finite differences (fd); the agreement is the "
              "largest difference relative to the largest finite difference."]
    for step in e.layers:
        k = step.number
        a_prev = e.x if k == 1 else e.layers[k - 2].a
        rows = [(rf"{_partial('L', f'W_{{{k}}}')} = \delta_{{{k}}} a_{{{k - 1}}}^\top = "
                 rf"{arr(step.delta)}{arr(a_prev, row=True)} = {arr(step.dW)}", step.dW_numeric)]
        if step.db is not None:
            rows.append((rf"{_partial('L', f'b_{{{k}}}')} = {arr(step.db)}", step.db_numeric))
        for shown, numeric in rows:
            parts = [shown] if is_summarized(numeric, max_entries) else [
                shown, rf"\mathrm{{fd}}\ {arr(numeric)}"]
            blocks.append(_display(*parts))
        errors = ", ".join(f"{err:.1e} ({name})" for name, err in step.fd_errors().items())
        checked, total = step.fd_coverage()
        scope = "" if checked == total else f" ({checked} of {total} entries checked)"
        blocks.append(f"Layer {k} agreement: {errors}{scope}.")
    return blocks


def _update(e, arr) -> list[str]:
    blocks = [rf"#### One update: $w \leftarrow w - \alpha\,\partial L / \partial w$, "
              rf"$\alpha = {tex_number(e.lr)}$"]
    for step in e.layers:
        k = step.number
        parts = [rf"W_{{{k}}} \leftarrow {arr(step.W_updated)}"]
        if step.b_updated is not None:
            parts.append(rf"b_{{{k}}} \leftarrow {arr(step.b_updated)}")
        blocks.append(_display(*parts))
    blocks.append(f"The loss goes from {e.loss:.6g} to {e.loss_after:.6g}.")
    return blocks


def _neuron(view: NeuronView, arr) -> list[str]:
    k, j = view.layer, view.index
    verdict = "equal" if view.agrees() else "**different**"
    blocks = [f"#### Neuron {j} of layer {k}, by the scalar chain rule"]
    dcdz = _partial("C", "z")
    if view.is_output:
        blocks.append(f"An output neuron: ${dcdz}$ comes from the loss, "
                      rf"${dcdz} = \delta_{{{k}}}[{j}] = {tex_number(view.delta)}$.")
    else:
        terms = [f"({tex_number(w)})({tex_number(d)})"
                 for w, d in zip(view.weights, view.downstream, strict=True)]
        if len(terms) > _MAX_TERMS:
            terms = terms[:_MAX_TERMS - 1] + [rf"\cdots\ ({len(terms)}\ \mathrm{{terms}})"]
        blocks.append(f"It feeds the neurons of layer {k + 1} through the weights "
                      f"$w = W_{{{k + 1}}}[:, {j}]$, whose $\\partial C / \\partial z_i$ are "
                      f"the entries of $\\delta_{{{k + 1}}}$:")
        blocks.append(_display(
            rf"{dcdz} = f'(z)\sum_i w_i {_partial('C', 'z_i')} = "
            rf"{tex_number(view.f_prime)}\times\left[{' + '.join(terms)}\right] = "
            rf"{tex_number(view.delta)}"))
        blocks.append(f"The matrix form's $\\delta_{{{k}}}[{j}]$ is "
                      f"${tex_number(view.matrix_delta)}$: {verdict}.")
    blocks.append(f"The forward pass gives $\\partial z / \\partial w = a_{{{k - 1}}}$, so:")
    blocks.append(_display(rf"{_partial('C', 'w')} = {dcdz}\, a_{{{k - 1}}}^\top = "
                           rf"{arr(np.asarray(view.weight_gradient), row=True)}"))
    blocks.append(f"That is row {j} of $\\partial L / \\partial W_{{{k}}}$: {verdict}.")
    return blocks
