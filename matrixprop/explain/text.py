"""The plain-text rendering of an :class:`~matrixprop.explain.Explanation`, for a terminal.

Each quantity is written ``name = [numbers]`` (matrices as nested lists, one row per line when
they do not fit), so the output is easy to read and to parse.
"""

from __future__ import annotations

import numpy as np

from .formulas import activation_summary, loss_formula, loss_gradient_formula, output_delta_formula
from .neuron import NeuronView
from .numbers import is_summarized, number, text_array

__all__ = ["render_text"]

_INDENT = "  "
_GAP = "   "
_MAX_TERMS = 4  # terms of the neuron view's sum written out


class _Writer:
    """Collects lines; packs ``name = value`` items side by side within the width."""

    def __init__(self, width: int, max_entries: int):
        self.width, self.max_entries, self.lines = width, max_entries, []

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def item(self, name: str, array, sep: str = "=") -> str:
        """``name = value``, wrapped at commas (and between matrix rows) when too wide."""
        head, value = f"{name} {sep} ", text_array(array, self.max_entries)
        limit = self.width - len(_INDENT)
        if len(head + value) <= limit or is_summarized(array, self.max_entries):
            return head + value
        pad = " " * len(head)
        pieces = value.split(", ")
        lines, empty = [head], True
        for i, piece in enumerate(pieces):
            token = piece + ("," if i < len(pieces) - 1 else "")
            row_break = np.ndim(array) == 2 and piece.startswith("[") and i > 0
            if not empty and (row_break or len(lines[-1]) + 1 + len(token) > limit):
                lines.append(pad + token)
            else:
                lines[-1] += token if empty else " " + token
            empty = False
        return "\n".join(lines)

    def items(self, *items: str) -> None:
        current = ""
        for item in items:
            fits = len(_INDENT + current + _GAP + item) <= self.width
            if current and ("\n" in item or "\n" in current or not fits):
                self._flush(current)
                current = item
            else:
                current = f"{current}{_GAP}{item}" if current else item
        if current:
            self._flush(current)

    def _flush(self, text: str) -> None:
        self.lines.extend(_INDENT + part for part in text.split("\n"))


def render_text(explanation, width: int = 100, max_entries: int = 24) -> str:
    """The explanation as plain text lines of at most ``width`` columns (long matrices aside)."""
    e, out = explanation, _Writer(width, max_entries)
    n = len(e.layers)
    out.line(f"Backpropagation on one sample: network {e.sizes} "
             f"({activation_summary(e.layers)}), loss {e.loss_name} ({e.reduction})")
    out.line(f"Layer k has W_k (layers.{{k-1}}.weight in the code); a_0 = x; a_{n} is the output.")
    out.items(out.item("x = a_0", e.x), out.item("y", e.y))
    _forward(e, out)
    out.line(f"LOSS   L = {loss_formula(e.loss_name, e.loss_scale, n)} = {number(e.loss)}")
    _backward(e, out)
    _gradients(e, out)
    _update(e, out)
    if e.neuron is not None:
        _neuron(e.neuron_view(*e.neuron), out)
    return "\n".join(out.lines)


def _forward(e, out: _Writer) -> None:
    out.line("FORWARD PASS   z_k = W_k a_{k-1} + b_k,   a_k = f_k(z_k)")
    for step in e.layers:
        k = step.number
        out.line(f"layer {k}: W_{k} {step.W.shape}, {step.activation}")
        params = [out.item(f"W_{k}", step.W)]
        if step.b is not None:
            params.append(out.item(f"b_{k}", step.b))
        out.items(*params)
        out.items(out.item(f"z_{k}", step.z), out.item(f"a_{k}", step.a))


def _backward(e, out: _Writer) -> None:
    n = len(e.layers)
    out.line("BACKWARD PASS   delta_k = dL/dz_k")
    last = e.layers[-1]
    head = f"layer {n}: {output_delta_formula(e.delta_rule, e.loss_scale, n)}"
    gradient = loss_gradient_formula(e.loss_name, e.loss_scale, n)
    if e.delta_rule != "fused" and gradient is not None:
        head += f", dL/da_{n} = {gradient}"
        if e.loss_name == "half_sse":
            head += f": a vector, not the norm ||a_{n} - y||"
    out.line(head)
    if e.delta_rule == "fused":
        out.items(out.item(f"delta_{n}", last.delta))
    else:
        prime = f"J_softmax(z_{n})" if e.delta_rule == "jacobian" else f"f_{n}'(z_{n})"
        out.items(out.item(f"dL/da_{n}", last.upstream), out.item(prime, last.f_prime),
                  out.item(f"delta_{n}", last.delta))
    for step in reversed(e.layers[:-1]):
        k = step.number
        out.line(f"layer {k}: delta_{k} = f_{k}'(z_{k}) * (W_{k + 1}^T delta_{k + 1})")
        out.items(out.item(f"W_{k + 1}^T delta_{k + 1}", step.upstream),
                  out.item(f"f_{k}'(z_{k})", step.f_prime), out.item(f"delta_{k}", step.delta))


def _gradients(e, out: _Writer) -> None:
    out.line("GRADIENTS   dL/dW_k = delta_k a_{k-1}^T,   dL/db_k = delta_k"
             "   (fd: central finite differences)")
    for step in e.layers:
        k = step.number
        out.line(f"layer {k}:")
        pairs = [(f"dL/dW_{k}", step.dW, step.dW_numeric)]
        if step.db is not None:
            pairs.append((f"dL/db_{k}", step.db, step.db_numeric))
        for name, analytic, numeric in pairs:
            shown = [out.item(name, analytic)]
            if not is_summarized(numeric, out.max_entries):
                shown.append(out.item("fd", numeric))
            out.items(*shown)
        checked, total = step.fd_coverage()
        agreement = ", ".join(f"{number(err)} ({name})" for name, err in step.fd_errors().items())
        scope = "" if checked == total else f", {checked} of {total} entries checked"
        out.items(f"agreement: max relative difference {agreement}{scope}")


def _update(e, out: _Writer) -> None:
    out.line(f"UPDATE   w <- w - alpha dL/dw,   alpha = {number(e.lr)}")
    for step in e.layers:
        k = step.number
        params = [out.item(f"W_{k}", step.W_updated, "<-")]
        if step.b_updated is not None:
            params.append(out.item(f"b_{k}", step.b_updated, "<-"))
        out.items(*params)
    out.items(f"loss before the update {number(e.loss)}, after {number(e.loss_after)}")


def _neuron(view: NeuronView, out: _Writer) -> None:
    k, j = view.layer, view.index
    verdict = "equal" if view.agrees() else "DIFFERENT"
    prime = "" if view.f_prime is None else f", f'(z) = {number(view.f_prime)}"
    if view.is_output:
        out.line(f"NEURON VIEW   layer {k}, neuron {j}: an output neuron, its dC/dz comes from "
                 f"the loss (delta_{k})")
        out.items(f"z = {number(view.z)}{prime};  dC/dz = delta_{k}[{j}] = {number(view.delta)}")
    else:
        out.line(f"NEURON VIEW   layer {k}, neuron {j}: the article's chain rule "
                 "dC/dz = f'(z) sum_i w_i dC/dz_i")
        fed = view.weights.size
        out.items(f"z = {number(view.z)}{prime}; it feeds the {fed} neuron{'s' * (fed > 1)} "
                  f"of layer {k + 1}", out.item(f"w = W_{k + 1}[:, {j}]", view.weights),
                  out.item(f"dC/dz_i = delta_{k + 1}", view.downstream))
        terms = [f"({number(w)})({number(d)})"
                 for w, d in zip(view.weights, view.downstream, strict=True)]
        if len(terms) > _MAX_TERMS:
            terms = terms[:_MAX_TERMS - 1] + [f"... ({len(terms)} terms)"]
        out.items(f"dC/dz = {number(view.f_prime)} * [{' + '.join(terms)}]")
        out.items(f"      = {number(view.delta)} = delta_{k}[{j}] of the matrix form ({verdict})")
    out.items(out.item(f"dz/dw = a_{k - 1}", view.inputs))
    out.items(out.item(f"so dC/dW_{k}[{j}, :] = dC/dz * a_{k - 1}", view.weight_gradient),
              f"= row {j} of dL/dW_{k} ({verdict})")
