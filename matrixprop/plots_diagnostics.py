"""``diagnostics.png``: the per-layer training diagnostics of a run, one panel per measure.

Reads the ``layer{k}_{metric}`` columns that :class:`matrixprop.diagnostics.Diagnostics` adds to
a History and draws each metric against the epoch, one line per layer, so a vanishing gradient
(the first layers' gradient norms orders of magnitude below the last ones') is visible at a
glance. Drawn on an Agg canvas (no window, no pyplot state). Needs matplotlib.
"""

from __future__ import annotations

import os
from pathlib import Path

from .diagnostics import columns as diagnostic_columns
from .training import History

__all__ = ["plot_diagnostics"]

# metric -> (axis label, y scale)
_PANELS = {
    "grad_norm": ("gradient norm ||dL/dW||", "log"),
    "weight_norm": ("weight norm ||W||", "linear"),
    "update_ratio": ("update / weight ||dW|| / ||W||", "log"),
    "dead": ("dead ReLU fraction", "fraction"),
    "saturated": ("saturated unit fraction", "fraction"),
}


def plot_diagnostics(history: History, path: str | os.PathLike[str],
                     title: str | None = None) -> Path:
    """Draw every diagnostics metric of ``history`` per layer against the epoch and save it.

    Parameters
    ----------
    history : History
        A run trained with :class:`~matrixprop.diagnostics.Diagnostics`.
    path : str or path-like
        The image file; its suffix picks the format (``.png``, ``.svg``, ``.pdf``).
    title : str, optional
        A title over the panels.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    columns = diagnostic_columns(history)
    if not columns:
        raise ValueError("the history has no diagnostics: train with callbacks=[d] and "
                         "gradient_hooks=[d], d a matrixprop.diagnostics.Diagnostics")
    epochs = [epoch + 1 for epoch in history.epochs]
    n_cols = 2 if len(columns) == 4 else min(len(columns), 3)
    n_rows = -(-len(columns) // n_cols)
    figure = Figure(figsize=(4.6 * n_cols, 3.6 * n_rows), layout="constrained")
    FigureCanvasAgg(figure)
    for index, (metric, layers) in enumerate(columns.items(), start=1):
        label, scale = _PANELS[metric]
        axes = figure.add_subplot(n_rows, n_cols, index)
        for layer, values in layers.items():
            axes.plot(epochs, values, marker="o", markersize=3, label=f"layer {layer}")
        if scale == "log":
            axes.set_yscale("log")
        elif scale == "fraction":
            axes.set_ylim(-0.03, 1.03)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
