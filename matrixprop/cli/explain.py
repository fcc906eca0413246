"""``matrixprop explain``: one forward and backward pass worked out with every number.

With no options it explains the article's small network ([2, 2, 2], sigmoid, half squared
error) on a made-up sample, in one terminal screen. ``--model FILE`` explains a trained model
on one sample of a dataset instead.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import losses
from ..explain import explain as explain_sample
from ..explain import random_sample
from ..io import read_model
from ..network import MLP
from ._common import (
    ActivationName,
    LossName,
    Reduction,
    check_memory,
    in_range,
    model_dataset,
    model_loss,
    natural_output,
)
from ._common import usage_error as _usage_error
from ._training import parse_layers

_NETWORK = "Made-up network (without --model)"
_MODEL = "Trained model"
_OUTPUT = "Output"
# options that describe the made-up network, so they make no sense with --model
_NETWORK_OPTIONS = ("layers", "activation", "output_activation", "seed")


class Format(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


def explain(
    ctx: typer.Context,
    layers: Annotated[str, typer.Option(
        help="Layer widths, input to output.", rich_help_panel=_NETWORK)] = "2,2,2",
    activation: Annotated[ActivationName, typer.Option(
        help="Hidden activation.", rich_help_panel=_NETWORK)] = "sigmoid",
    output_activation: Annotated[ActivationName | None, typer.Option(
        help="Output activation (default: the loss's natural one; the hidden activation for "
             "half_sse).", rich_help_panel=_NETWORK, show_default=False)] = None,
    loss: Annotated[LossName | None, typer.Option(
        help="Loss (default: half_sse, the article's; with --model, the model's).",
        show_default=False)] = None,
    reduction: Annotated[Reduction | None, typer.Option(
        help="Reduction of the loss (default: mean; with --model, the model's).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option(
        help="Seeds the weights and the made-up sample.", min=0, rich_help_panel=_NETWORK)
                    ] = 0,
    model: Annotated[Path | None, typer.Option(
        help="Explain this trained model (a file written by train or net.save).",
        rich_help_panel=_MODEL, show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Dataset of the sample (default: the one the model was trained on).",
        rich_help_panel=_MODEL, show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder searched first for MNIST-style files.", rich_help_panel=_MODEL,
        show_default=False)] = None,
    index: Annotated[int, typer.Option(
        help="Which test sample of the dataset to explain.", min=0, rich_help_panel=_MODEL)
                     ] = 0,
    lr: Annotated[float, typer.Option(
        help="Learning rate of the one update shown.", callback=in_range(0, low_open=True))
                  ] = 0.5,
    neuron: Annotated[str, typer.Option(
        help="LAYER,INDEX of the neuron whose chain rule is shown, both from 1 ('none' for "
             "none).", rich_help_panel=_OUTPUT)] = "1,1",
    format: Annotated[Format, typer.Option(
        "--format", help="text for the terminal, markdown (LaTeX math) or json (every number, "
        "never summarized).", rich_help_panel=_OUTPUT)] = Format.text,
    width: Annotated[int, typer.Option(
        help="Columns of the text format.", min=40, rich_help_panel=_OUTPUT)] = 100,
) -> None:
    """Work one forward and backward pass with every number: z = W a + b, a = f(z), the loss,
    the deltas, the gradients beside their finite differences, one update, one neuron."""
    explicit = {name for name in _NETWORK_OPTIONS
                if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}
    chosen = _neuron(neuron)
    if model is not None:
        if explicit:
            first = sorted(explicit)[0].replace("_", "-")
            raise _usage_error("describes the made-up network: leave it out with --model",
                               f"--{first}")
        net, x, y, loss_fn = _model_sample(model, dataset, data_dir, index, loss, reduction)
    else:
        net, x, y, loss_fn = _made_up(parse_layers(layers), activation, output_activation,
                                      loss, reduction, seed)
    try:
        loss_fn.check_output(net.output_activation)
    except ValueError as exc:
        raise _usage_error(str(exc), "--loss" if model else "--output-activation") from None
    result = explain_sample(net, x, y, loss_fn, lr=lr, neuron=None)
    if chosen is not None:
        try:
            result.neuron_view(*chosen)
        except ValueError as exc:
            raise _usage_error(str(exc), "--neuron") from None
        result.neuron = chosen
    if format is Format.json:
        text = result.to_json(indent=1)
    elif format is Format.markdown:
        text = result.to_markdown()
    else:
        text = result.to_text(width=width)
    sys.stdout.write(text.rstrip("\n") + "\n")


def _neuron(text: str) -> tuple[int, int] | None:
    if text.strip().lower() == "none":
        return None
    try:
        layer, index = (int(part) for part in text.split(","))
    except ValueError:
        raise _usage_error(f"expected LAYER,INDEX such as 1,2 (or none), got {text!r}",
                           "--neuron") from None
    return layer, index


def _made_up(sizes, activation, output_activation, loss, reduction, seed):
    """The made-up network, its sample and its loss."""
    loss = losses.get(loss or "half_sse", reduction=reduction or "mean")
    output = output_activation or natural_output(loss.name, activation)
    check_memory(sizes, activation=activation, output=output, dtype="float32", batch_rows=1)
    net = MLP(sizes, activation, output, seed=seed)
    x, y = random_sample(net, loss, seed=seed)
    return net, x, y, loss


def _model_sample(path, dataset, data_dir, index, loss, reduction):
    """The trained model, test sample ``index`` of its dataset, and its loss."""
    net, document = read_model(path)
    data = model_dataset(path, net, document, dataset, data_dir)
    n = data.X_test.shape[0]
    if index >= n:
        raise _usage_error(f"{data.name} has {n} test samples: the index must be below {n}",
                           "--index")
    return net, data.X_test[index], data.y_test[index], model_loss(net, document, loss,
                                                                  reduction)
