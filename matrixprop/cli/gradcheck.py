"""``matrixprop gradcheck``: backpropagation against finite differences, per parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from .. import losses
from ..gradcheck import gradcheck as check_gradients
from ..io import read_model
from ..network import MLP, Network
from ._common import (
    ActivationName,
    LossName,
    Reduction,
    check_memory,
    in_range,
    model_loss,
    natural_output,
    print_json,
    stdout,
    usage_error,
)
from ._training import parse_layers


def gradcheck(
    model: Annotated[Path | None, typer.Argument(
        help="A model file to check (default: a small random network).", show_default=False)
                     ] = None,
    layers: Annotated[str, typer.Option(help="Widths of the random network.")] = "4,5,3",
    activation: Annotated[ActivationName, typer.Option(help="Its hidden activation.")
                          ] = "sigmoid",
    output_activation: Annotated[ActivationName | None, typer.Option(
        help="Its output activation (default: the loss's natural one).", show_default=False)
                                 ] = None,
    loss: Annotated[LossName | None, typer.Option(
        help="Loss (default: the model's, or cross_entropy).", show_default=False)] = None,
    reduction: Annotated[Reduction | None, typer.Option(
        help="Reduction of the loss (default: the model's, or mean).", show_default=False)
                         ] = None,
    samples: Annotated[int, typer.Option(help="Random samples in the batch.", min=1)] = 8,
    seed: Annotated[int, typer.Option(help="Seeds the network and the data.", min=0)] = 0,
    tolerance: Annotated[float, typer.Option(
        help="Largest relative error accepted.", callback=in_range(0, low_open=True))] = 1e-6,
    json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Check backpropagation's gradients against finite differences, per parameter.

    Central differences in float64 on a random batch; exit code 1 above the tolerance.
    """
    if model is not None:
        net, document = read_model(model)
        loss_fn = model_loss(net, document, loss, reduction)
        check_memory(net.sizes, activation=net.layers[0].activation.name,
                     output=net.output_activation.name, dtype="float64", batch_rows=samples,
                     allocated=("parameters", "gradients"), batch_flag="--samples")
    else:
        loss_fn = losses.get(loss or "cross_entropy", reduction=reduction or "mean")
        output = output_activation or natural_output(loss_fn.name, activation)
        sizes = parse_layers(layers)
        check_memory(sizes, activation=activation, output=output, dtype="float64",
                     batch_rows=samples, batch_flag="--samples")
        net = MLP(sizes, activation, output, seed=seed, dtype="float64")
    try:
        loss_fn.check_output(net.output_activation)
    except ValueError as exc:
        raise usage_error(str(exc), "--loss") from None
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, net.n_inputs))
    result = check_gradients(net, X, random_targets(net, loss_fn, samples, rng), loss_fn,
                             tolerance=tolerance)
    if json:
        print_json({"ok": result.ok, "tolerance": tolerance, "checked": result.checked,
                    "relative_errors": result.relative_errors,
                    "absolute_errors": result.absolute_errors})
    else:
        _print(result)
    if not result.ok:
        raise typer.Exit(1)


def random_targets(net: Network, loss: losses.Loss, n: int, rng: np.random.Generator):
    """Targets a loss accepts: class labels for cross-entropy, 0/1 for binary cross-entropy,
    normal values for the squared errors."""
    if isinstance(loss, losses.CrossEntropy):
        return rng.integers(0, net.n_outputs, size=n) if net.n_outputs > 1 else np.ones(n)
    if isinstance(loss, losses.BinaryCrossEntropy):
        return rng.integers(0, 2, size=(n, net.n_outputs)).astype(np.float64)
    return rng.normal(size=(n, net.n_outputs))


def _print(result) -> None:
    table = Table(title="backpropagation vs finite differences")
    table.add_column("parameter")
    table.add_column("relative error", justify="right")
    table.add_column("absolute error", justify="right")
    table.add_column("")
    for name, error in result.relative_errors.items():
        verdict = "[green]ok[/green]" if error <= result.tolerance else "[red]FAILED[/red]"
        table.add_row(name, f"{error:.2e}", f"{result.absolute_errors[name]:.2e}", verdict)
    stdout.print(table)
    verdict = "[green]OK[/green]" if result.ok else "[red]FAILED[/red]"
    stdout.print(f"{verdict}: worst relative error {result.max_error:.2e}, tolerance "
                 f"{result.tolerance:.0e}, {result.checked} entries checked")
