"""``train``'s set-up: from command-line options to data, network, loss and optimizer.

Everything is checked here, before the output folder is touched, so that a bad option never
leaves files behind. A fresh run resolves the defaults that depend on the data (``--layers``,
``--output-activation``) and records the result as the run's configuration; ``--resume`` takes
the configuration from the checkpoint instead and refuses options that contradict it. A run
whose memory would exceed what the machine has left is refused here too, with the estimate.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import losses, optimizers
from ..checkpoint import load_checkpoint
from ..data import Dataset, load_dataset, train_validation_split
from ..network import _PREDICT_CHUNK, MLP, Network
from ..training import History
from ._common import check_memory, natural_output, usage_error

CHECKPOINT = "checkpoint.safetensors"
MODEL, METRICS, HISTORY, CURVES = "model.safetensors", "metrics.json", "history.csv", "curves.png"
FINAL_FILES = (MODEL, METRICS, HISTORY, CURVES)  # written once training has ended
HIDDEN_WIDTH = 64  # the default network: input, one hidden layer of this width, output

# Options recorded in the run's configuration; on --resume only "epochs" may change.
TRAINING_OPTIONS = ("dataset", "layers", "activation", "output_activation", "loss", "reduction",
                    "optimizer", "lr", "momentum", "weight_decay", "l2", "batch_size", "epochs",
                    "init", "dropout", "seed", "dtype", "validation_fraction", "early_stopping",
                    "patience", "clip_grad_norm")
_OPTIMIZER_OPTIONS = ("lr", "momentum", "weight_decay")
_NEWER_OPTIONS = {"clip_grad_norm": None}  # absent from older checkpoints: their value then
_MODEL_PARTS = ("parameters", "gradients", "optimizer state")  # allocated with the network


@dataclass
class Setup:
    """A run ready to train: its configuration, data, network, loss and optimizer."""

    config: dict
    data: Dataset
    X_train: np.ndarray
    y_train: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None
    net: Network
    loss: losses.Loss
    optimizer: optimizers.Optimizer
    initial_epoch: int = 0
    history: History | None = None


def prepare(options: dict, explicit: set[str], out: Path) -> Setup:
    """Check the options and build the run (``explicit``: the options given on the command
    line; ``out``: the output folder)."""
    if out.exists() and not out.is_dir():
        raise usage_error(f"{out} is a file, not a folder", "--out")
    if options["resume"]:
        return _resume(options, explicit, out)
    if (out / CHECKPOINT).exists() or (out / MODEL).exists():
        raise usage_error(f"{out} already holds a run: continue it with --resume, or choose "
                          "another --out", "--out")
    return _fresh(options)


def _fresh(options: dict) -> Setup:
    activation = options["activation"]
    output = options["output_activation"] or natural_output(options["loss"], activation)
    loss = losses.get(options["loss"], reduction=options["reduction"])
    try:
        loss.check_output(output)
    except ValueError as exc:
        raise usage_error(str(exc), "--output-activation") from None
    optimizer = _optimizer(options)
    if options["layers"] is not None:  # a syntax error or a network too large for the machine
        check_training_memory(parse_layers(options["layers"]), options, output,
                              optimizer)  # fail early
    data = load_dataset(options["dataset"], options["data_dir"], dtype=options["dtype"])
    layers = _layers(options["layers"], data)
    check_training_memory(layers, options, output, optimizer, data)
    net = MLP(layers, activation, output, seed=options["seed"], dtype=options["dtype"],
              init=options["init"], dropout=options["dropout"])
    config = {key: options[key] for key in TRAINING_OPTIONS if key not in _OPTIMIZER_OPTIONS}
    config.update(dataset=str(options["dataset"]), layers=layers, output_activation=output,
                  optimizer=optimizer.config())
    return _setup(config, data, net, loss, optimizer)


def _resume(options: dict, explicit: set[str], out: Path) -> Setup:
    if "out" not in explicit:
        raise usage_error("--resume needs the --out folder of the run to continue", "--out")
    checkpoint = load_checkpoint(out / CHECKPOINT)
    config, loss = checkpoint.metadata.get("training"), checkpoint.metadata.get("loss")
    recorded = set(TRAINING_OPTIONS) - set(_OPTIMIZER_OPTIONS) - set(_NEWER_OPTIONS)
    if not (isinstance(config, dict) and recorded.issubset(config)
            and isinstance(config["optimizer"], dict) and isinstance(loss, dict)):
        raise ValueError(f"{out / CHECKPOINT}: the checkpoint records no valid training "
                         "configuration and loss")
    config = {**_NEWER_OPTIONS, **config}
    for key in sorted(explicit.intersection(TRAINING_OPTIONS) - {"epochs"}):
        given, saved = _normalized(key, options[key]), _saved(config, key)
        if given != saved:
            raise usage_error(f"the run in {out} was trained with {saved!r}, not {given!r}; "
                              "leave it out to resume (only --epochs may change)",
                              f"--{key.replace('_', '-')}")
    finished = all((out / name).exists() for name in FINAL_FILES)
    if options["epochs"] < checkpoint.epoch or (options["epochs"] == checkpoint.epoch
                                                and finished):
        raise usage_error(f"the run in {out} has already trained {checkpoint.epoch} epochs: "
                          f"pass a larger --epochs to continue it", "--epochs")
    # (epochs == checkpoint.epoch without the final files: killed while writing them; the run
    # then only writes them)
    data = load_dataset(config["dataset"], options["data_dir"], dtype=config["dtype"])
    net = checkpoint.network
    if data.n_features != net.n_inputs:
        raise ValueError(f"{config['dataset']} now has {data.n_features} features per sample, "
                         f"but the checkpoint's network takes {net.n_inputs}")
    check_training_memory(net.sizes, config, config["output_activation"], checkpoint.optimizer,
                          data, allocated=_MODEL_PARTS)
    loss = losses.get(loss)
    config = {**config, "epochs": options["epochs"]}
    return _setup(config, data, net, loss, checkpoint.optimizer, checkpoint.epoch,
                  checkpoint.history)


def _setup(config, data, net, loss, optimizer, initial_epoch=0, history=None) -> Setup:
    fraction = config["validation_fraction"]
    X, y, validation = data.X_train, data.y_train, None
    if fraction:
        try:
            X, X_val, y, y_val = train_validation_split(X, y, fraction, config["seed"])
        except ValueError as exc:  # a part would be empty
            raise usage_error(str(exc), "--validation-fraction") from None
        validation = (X_val, y_val)
    return Setup(config, data, X, y, validation, net, loss, optimizer, initial_epoch, history)


def check_training_memory(sizes: list[int], config: dict, output: str, optimizer,
                          data: Dataset | None = None, allocated: tuple[str, ...] = ()) -> None:
    """:func:`check_memory` for training on ``data`` (before it is read: the network alone);
    ``allocated`` lists the parts already in memory (a resumed network)."""
    rows = {}
    if data is not None:
        n = data.X_train.shape[0]
        n_validation = math.ceil(config["validation_fraction"] * n)
        itemsize = np.dtype(config["dtype"]).itemsize
        rows = {"batch_rows": min(config["batch_size"], n),  # validation and test predictions:
                "predict_rows": min(_PREDICT_CHUNK, max(n_validation, data.X_test.shape[0])),
                "data_bytes": data.X_train.nbytes + n * sizes[-1] * itemsize}
    check_memory(sizes, activation=config["activation"], output=output, dtype=config["dtype"],
                 dropout=config["dropout"], optimizer=optimizer, allocated=allocated, **rows)


def output_sizes(data: Dataset) -> list[int]:
    """The output widths that fit ``data``: one per class (or 1 for two classes), or one per
    target column."""
    y = data.y_train
    if data.n_classes is not None and y.ndim == 1:
        return [data.n_classes, 1] if data.n_classes == 2 else [data.n_classes]
    return [1 if y.ndim == 1 else y.shape[1]]


def parse_layers(text: str) -> list[int]:
    """``"784,30,10"`` as ``[784, 30, 10]``, or a usage error."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or min(sizes) < 1:
        raise usage_error(f"expected at least two positive widths separated by commas, such as "
                          f"784,30,10; got {text!r}", "--layers")
    return sizes


def _layers(text: str | None, data: Dataset) -> list[int]:
    outputs = output_sizes(data)
    if text is None:
        return [data.n_features, HIDDEN_WIDTH, outputs[0]]
    sizes = parse_layers(text)
    if sizes[0] != data.n_features or sizes[-1] not in outputs:
        what = (f"{data.n_classes} classes" if data.n_classes is not None
                and data.y_train.ndim == 1 else f"{outputs[0]} target column(s)")
        ends = " or ".join(str(n) for n in outputs)
        raise usage_error(f"{text} does not fit {data.name}: its samples have {data.n_features} "
                          f"features and {what}, so the list must start with "
                          f"{data.n_features} and end with {ends}", "--layers")
    return sizes


def _optimizer(options: dict) -> optimizers.Optimizer:
    name = options["optimizer"]
    given = {key: options[key] for key in _OPTIMIZER_OPTIONS if options[key] is not None}
    accepted = inspect.signature(type(optimizers.get(name))).parameters
    for key in given:
        if key not in accepted:
            raise usage_error(f"the {name} optimizer takes no {key}",
                              f"--{key.replace('_', '-')}")
    return optimizers.get(name, **given)


def _normalized(key: str, value):
    """A command-line value in the form the configuration records it."""
    return parse_layers(value) if key == "layers" else value


def _saved(config: dict, key: str):
    """The recorded value of option ``key``."""
    if key == "optimizer":
        return config["optimizer"].get("name")
    if key in _OPTIMIZER_OPTIONS:
        return config["optimizer"].get(key)
    return config[key]
