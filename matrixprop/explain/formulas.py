"""The formulas an explanation prints, in plain text and in LaTeX, for each loss and activation.

Each formula is written for the output layer's number ``L`` and the reduction's constant ``c``
(``L = c * sum of the terms``; shown only when it is not 1).
"""

from __future__ import annotations

from .numbers import number, tex_number

__all__ = ["activation_summary", "activation_tex", "loss_formula", "loss_gradient_formula",
           "output_delta_formula"]

_ACTIVATION_TEX = {"sigmoid": r"\sigma", "tanh": r"\tanh", "identity": r"\mathrm{id}"}

# (text, LaTeX) templates of the loss per unit constant; {L} is the output layer's number.
_LOSS = {
    "half_sse": ("1/2 ||a_{L} - y||^2", r"\frac{{1}}{{2}}\Vert a_{{{L}}} - y\Vert_2^2"),
    "mse": ("sum_j (a_{L},j - y_j)^2", r"\sum_j (a_{{{L},j}} - y_j)^2"),
    "cross_entropy": ("-sum_j y_j log a_{L},j", r"-\sum_j y_j \log a_{{{L},j}}"),
    "binary_cross_entropy": (
        "-sum_j [y_j log a_{L},j + (1 - y_j) log(1 - a_{L},j)]",
        r"-\sum_j \left[y_j \log a_{{{L},j}} + (1 - y_j)\log(1 - a_{{{L},j}})\right]",
    ),
}

# (text, LaTeX) templates of dL/da_L per unit constant.
_LOSS_GRADIENT = {
    "half_sse": ("(a_{L} - y)", "(a_{{{L}}} - y)"),
    "mse": ("2 (a_{L} - y)", r"2\,(a_{{{L}}} - y)"),
    "cross_entropy": ("(-y / a_{L})", r"(-y \oslash a_{{{L}}})"),
    "binary_cross_entropy": ("(a_{L} - y) / (a_{L} (1 - a_{L}))",
                             r"(a_{{{L}}} - y) \oslash (a_{{{L}}} \odot (1 - a_{{{L}}}))"),
}


def activation_tex(name: str) -> str:
    """The LaTeX symbol of an activation: ``\\sigma`` for sigmoid, ``\\mathrm{relu}``..."""
    return _ACTIVATION_TEX.get(name, r"\mathrm{" + name.replace("_", r"\_") + "}")


def activation_summary(steps) -> str:
    """The layers' activations, runs of one name grouped: ``relu x5, softmax``."""
    names = [step.activation for step in steps]
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return ", ".join(name if count == 1 else f"{name} x{count}" for name, count in runs)


def _times(c: float, body: str, tex: bool) -> str:
    if c == 1.0:
        return body
    return rf"{tex_number(c)}\cdot {body}" if tex else f"{number(c)} * {body}"


def loss_formula(loss_name: str, c: float, L: int, *, tex: bool = False) -> str:
    """The loss as a formula in the output ``a_L``."""
    if loss_name not in _LOSS:
        return rf"\mathrm{{loss}}(a_{{{L}}}, y)" if tex else f"loss(a_{L}, y)"
    text, latex = _LOSS[loss_name]
    return _times(c, (latex if tex else text).format(L=L), tex)


def loss_gradient_formula(loss_name: str, c: float, L: int, *, tex: bool = False) -> str | None:
    """``dL/da_L`` as a formula (a vector), or None for a loss this module does not know."""
    if loss_name not in _LOSS_GRADIENT:
        return None
    text, latex = _LOSS_GRADIENT[loss_name]
    return _times(c, (latex if tex else text).format(L=L), tex)


def output_delta_formula(rule: str, c: float, L: int, *, tex: bool = False) -> str:
    """``delta_L`` by one of three rules: ``fused`` (a matched output/loss pair),
    ``jacobian`` (softmax without its matched loss) or ``elementwise``."""
    if rule == "fused":
        body = _times(c, f"(a_{{{L}}} - y)" if tex else f"(a_{L} - y)", tex)
        return rf"\delta_{{{L}}} = {body}" if tex else f"delta_{L} = {body}"
    if rule == "jacobian":
        return (rf"\delta_{{{L}}} = J_{{\mathrm{{softmax}}}}(z_{{{L}}})^\top "
                rf"\frac{{\partial L}}{{\partial a_{{{L}}}}}" if tex
                else f"delta_{L} = J_softmax(z_{L})^T dL/da_{L}")
    return (rf"\delta_{{{L}}} = \frac{{\partial L}}{{\partial a_{{{L}}}}} \odot "
            rf"f_{{{L}}}'(z_{{{L}}})" if tex else f"delta_{L} = dL/da_{L} * f_{L}'(z_{L})")
