"""How numbers, vectors and matrices are written in the text and markdown explanations.

Arrays with more than ``max_entries`` entries are summarized (shape, range, mean, norm); the JSON
form never uses these helpers and is never summarized.

The LaTeX uses only what both MathJax (GitHub, Jupyter) and matplotlib's mathtext understand:
a column vector is ``\\left[\\substack{...}\\right]`` and a matrix is its columns side by side.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["number", "text_array", "tex_number", "tex_array", "is_summarized"]

_DIGITS = 4  # significant digits shown


def number(value: float) -> str:
    """``value`` with four significant digits: ``0.3775``, ``-0.03809``, ``2.1e-10``."""
    return f"{float(value):.{_DIGITS}g}"


def is_summarized(array: np.ndarray, max_entries: int) -> bool:
    """Whether ``array`` is too large to write out in full."""
    return np.size(array) > max_entries


def _stats(array: np.ndarray) -> list[tuple[str, float]]:
    return [("min", np.min(array)), ("max", np.max(array)), ("mean", np.mean(array)),
            ("norm", np.linalg.norm(array))]


def _shape_words(shape: tuple[int, ...], times: str) -> str:
    if len(shape) == 1:
        return f"{shape[0]} entries"
    return times.join(str(n) for n in shape) + " matrix"


def text_array(array: np.ndarray, max_entries: int) -> str:
    """A nested-list form ``[[0.15, 0.2], [0.25, 0.3]]``, or a one-line summary."""
    array = np.asarray(array)
    if is_summarized(array, max_entries):
        stats = ", ".join(f"{name} {number(value)}" for name, value in _stats(array))
        return f"<{_shape_words(array.shape, 'x')}: {stats}>"
    if array.ndim == 1:
        return "[" + ", ".join(number(v) for v in array) + "]"
    return "[" + ", ".join(text_array(row, max_entries) for row in array) + "]"


def tex_number(value: float) -> str:
    """``value`` for LaTeX: ``2.1\\times10^{-10}`` rather than ``2.1e-10``."""
    value = float(value)
    if not math.isfinite(value):
        return r"\mathrm{" + str(value) + "}"
    mantissa, _, exponent = number(value).partition("e")
    if not exponent:
        return mantissa
    return rf"{mantissa}\times10^{{{int(exponent)}}}"


def tex_array(array: np.ndarray, max_entries: int, *, row: bool = False) -> str:
    """A vector (a column, or a row when ``row``) or a matrix in brackets, or a summary."""
    array = np.asarray(array)
    if is_summarized(array, max_entries):
        dims, _, word = _shape_words(array.shape, r"\times").partition(" ")
        shape = rf"{dims}\ \mathrm{{{word}}}"
        stats = r",\ ".join(rf"\mathrm{{{name}}}\ {tex_number(value)}"
                            for name, value in _stats(array))
        return rf"\left\langle {shape}:\ {stats}\right\rangle"
    if array.ndim == 1:
        array = array[None, :] if row else array[:, None]
    columns = (r"\substack{" + r"\\".join(tex_number(v) for v in column) + "}"
               for column in array.T)
    return r"\left[" + r"\;\;".join(columns) + r"\right]"
