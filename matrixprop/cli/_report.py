"""What ``train`` leaves behind: the model, metrics.json, history.csv, curves.png, and a table."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
from rich.markup import escape
from rich.table import Table

from .._version import __version__
from ..io import atomic_path, atomic_write, save, to_json
from ..plots import plot_history
from ..training import History
from ._common import stdout
from ._training import CURVES, HISTORY, METRICS, MODEL, Setup


def model_metadata(setup: Setup) -> dict:
    """What the model and checkpoint files record beside the architecture."""
    data = setup.data
    return {
        "loss": setup.loss.config(),
        "training": setup.config,
        "dataset": {"name": data.name, "n_features": data.n_features,
                    "n_classes": data.n_classes, "feature_shape": list(data.feature_shape)},
    }


def metrics(setup: Setup, history: History, test: dict, best_epoch: int | None) -> dict:
    """The run's metrics.json document."""
    seconds = float(sum(history["epoch_seconds"]))
    n_train = setup.X_train.shape[0]
    last = {key: history[key][-1] for key in ("loss", "accuracy", "val_loss", "val_accuracy")
            if key in history}
    return {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "train_seconds": seconds,
        "samples_per_second": n_train * len(history) / seconds if seconds > 0 else None,
        "epochs": len(history),
        "engine": {"name": history.engine, "why_not_compiled": history.engine_reason},
        "best_epoch": None if best_epoch is None or best_epoch < 0 else best_epoch + 1,
        "final": last,
        "dataset": {
            "name": setup.data.name,
            "n_train": n_train,
            "n_validation": 0 if setup.validation is None else setup.validation[0].shape[0],
            "n_test": setup.data.X_test.shape[0],
            "n_features": setup.data.n_features,
            "n_classes": setup.data.n_classes,
        },
        "config": setup.config,
        "versions": {"matrixprop": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def write_outputs(out: Path, setup: Setup, history: History, document: dict) -> None:
    """Write the model, metrics, history and curves of a finished run into ``out``, each
    atomically (a run killed meanwhile leaves each file whole or absent)."""
    save(setup.net, out / MODEL, model_metadata(setup))
    atomic_write(out / METRICS, (to_json(document, indent=2) + "\n").encode())
    with atomic_path(out / HISTORY) as path:
        history.to_csv(path)
    with atomic_path(out / CURVES) as path:
        plot_history(history, path, title=f"{setup.data.name}: {setup.config['layers']}")


def print_summary(document: dict, out: Path) -> None:
    """The final table of a run, on standard output."""
    table = Table(title="training finished", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    config, data = document["config"], document["dataset"]
    table.add_row("dataset", f"{data['name']} ({data['n_train']:,} train, "
                  f"{data['n_validation']:,} validation, {data['n_test']:,} test)")
    table.add_row("network", f"{config['layers']} {config['activation']} -> "
                  f"{config['output_activation']}")
    table.add_row("epochs", str(document["epochs"]))
    engine = document["engine"]
    if engine["name"] is not None:
        why = f" ({engine['why_not_compiled']})" if engine["why_not_compiled"] else ""
        table.add_row("engine", escape(engine["name"] + why))  # the reason may hold [brackets]
    for key, value in document["final"].items():
        table.add_row(f"final {key.replace('_', ' ')}", f"{value:.4f}")
    table.add_row("test loss", f"{document['test_loss']:.4f}")
    if document["test_accuracy"] is not None:
        table.add_row("test accuracy", f"{document['test_accuracy']:.4f}")
    table.add_row("training time", f"{document['train_seconds']:.2f} s")
    if document["samples_per_second"] is not None:
        table.add_row("samples per second", f"{document['samples_per_second']:,.0f}")
    table.add_row("output", str(out))
    stdout.print(table)
