"""Learning curves: loss and accuracy per epoch, training against validation, as an image.

Drawn with matplotlib's object interface on an Agg canvas: no window, no global pyplot state, so
it works on a headless machine and inside threads. Needs matplotlib (``pip install
matrixprop[cli]``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .training import History

__all__ = ["plot_history"]

_PANELS = (("loss", "loss"), ("accuracy", "accuracy"))


def plot_history(history: History, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Draw the loss and (for classifiers) the accuracy of every epoch and save the figure.

    Parameters
    ----------
    history : History
        The run's history; ``loss``/``val_loss`` and ``accuracy``/``val_accuracy`` are drawn
        where present, against the epoch number counted from 1.
    path : str or path-like
        The image file; its suffix picks the format (``.png``, ``.svg``, ``.pdf``).
    title : str, optional
        A title over both panels.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [(key, label) for key, label in _PANELS if key in history]
    if not panels:
        raise ValueError("the history has no loss to plot")
    epochs = [epoch + 1 for epoch in history.epochs]
    figure = Figure(figsize=(5.0 * len(panels), 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    for index, (key, label) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), index)
        axes.plot(epochs, history[key], marker="o", markersize=3, label="training")
        if f"val_{key}" in history:
            axes.plot(epochs, history[f"val_{key}"], marker="o", markersize=3,
                      label="validation")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
