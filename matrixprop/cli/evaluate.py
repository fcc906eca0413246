"""``matrixprop evaluate``: a model's loss, accuracy and confusion matrix on a test set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from ..io import read_model
from ._common import (
    LossName,
    Reduction,
    model_dataset,
    model_loss,
    print_json,
    score,
    stdout,
    usage_error,
)


def evaluate(
    model: Annotated[Path, typer.Argument(help="A model file written by train or net.save.")],
    dataset: Annotated[str | None, typer.Option(
        help="Dataset name or path (default: the one the model was trained on).",
        show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder searched first for MNIST-style files.")] = None,
    loss: Annotated[LossName | None, typer.Option(
        help="Loss to report (default: the model's training loss).", show_default=False)
                    ] = None,
    reduction: Annotated[Reduction | None, typer.Option(
        help="Reduction of --loss (default: the model's).", show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Score a model on a dataset's test part: loss, accuracy, confusion matrix."""
    net, document = read_model(model)
    loss_fn = model_loss(net, document, loss, reduction)
    try:
        loss_fn.check_output(net.output_activation)
    except ValueError as exc:
        raise usage_error(str(exc), "--loss") from None
    data = model_dataset(model, net, document, dataset, data_dir)
    result = score(net, loss_fn, data.X_test, data.y_test)
    report = {"model": str(model), "dataset": data.name, "n_samples": data.X_test.shape[0],
              "loss_function": loss_fn.config(), "loss": result["loss"],
              "accuracy": result["accuracy"], "confusion_matrix": None}
    if result["predicted"] is not None:
        report["confusion_matrix"] = confusion_matrix(result["labels"], result["predicted"],
                                                      max(net.n_outputs, 2))
    if json:
        print_json(report)
    else:
        _print(report)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: row = true, column = predicted."""
    pairs = labels.astype(np.intp) * n_classes + predicted.astype(np.intp)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _print(report: dict) -> None:
    stdout.print(f"[bold]{report['dataset']}[/bold] test set, {report['n_samples']:,} samples")
    stdout.print(f"loss ({report['loss_function']['name']}, "
                 f"{report['loss_function']['reduction']}): {report['loss']:.4f}")
    if report["accuracy"] is None:
        return
    stdout.print(f"accuracy: {report['accuracy']:.4f}")
    matrix = report["confusion_matrix"]
    table = Table(title="confusion matrix", caption="rows: true class, columns: predicted")
    table.add_column("", style="bold", justify="right")
    for k in range(matrix.shape[1]):
        table.add_column(str(k), justify="right")
    for k, row in enumerate(matrix):
        table.add_row(str(k), *(f"[green]{n}[/green]" if j == k else str(n)
                                for j, n in enumerate(row)))
    stdout.print(table)
