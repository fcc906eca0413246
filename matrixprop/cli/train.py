"""``matrixprop train``: train a network on a dataset and write the run's files."""

from __future__ import annotations

import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ..callbacks import ProgressBar
from ..checkpoint import CheckpointCallback
from ..diagnostics import Diagnostics
from ..diagnostics import columns as diagnostic_columns
from ..distributed import get_communicator
from ..guards import DivergenceGuard
from ..io import atomic_path, remove_temporaries
from ..plots_diagnostics import plot_diagnostics
from ..training import fit
from . import _report
from ._common import (
    ActivationName,
    DType,
    InitName,
    LossName,
    OptimizerName,
    Reduction,
    in_range,
    print_json,
    score,
    stderr,
    usage_error,
)
from ._interrupt import EXIT_CODE, StopOnInterrupt
from ._training import CHECKPOINT, FINAL_FILES, Setup, prepare

_MODEL = "Network"
_OPTIMIZATION = "Optimization"
_RUN = "Run"
_PROBE = 256  # training samples on which --diagnostics measures saturation
_DIAGNOSTICS_PLOT = "diagnostics.png"
_CLIP = "--clip-grad-norm"
_HINT = f"lower --lr or pass {_CLIP}"


def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(
        help="digits, mnist, fashion-mnist, or a .csv file, .npz file or folder of IDX files.",
        rich_help_panel=_RUN)] = "digits",
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder searched first for MNIST-style files.", rich_help_panel=_RUN)] = None,
    layers: Annotated[str | None, typer.Option(
        help="All layer widths, input to output, such as 784,30,10 (default: features,64,"
             "classes).", rich_help_panel=_MODEL)] = None,
    activation: Annotated[ActivationName, typer.Option(
        help="Hidden activation.", rich_help_panel=_MODEL)] = "relu",
    output_activation: Annotated[ActivationName | None, typer.Option(
        help="Output activation (default: the loss's natural one: softmax for cross_entropy, "
             "sigmoid for binary_cross_entropy, identity for mse, the hidden activation for "
             "half_sse).", rich_help_panel=_MODEL, show_default=False)] = None,
    loss: Annotated[LossName, typer.Option(help="Loss.", rich_help_panel=_MODEL)
                    ] = "cross_entropy",
    reduction: Annotated[Reduction, typer.Option(
        help="How the loss combines a batch: mean, sum, or batchmean (sum over outputs, mean "
             "over samples: the book's convention).", rich_help_panel=_MODEL)] = "mean",
    init: Annotated[InitName, typer.Option(help="Weight initializer.", rich_help_panel=_MODEL)
                    ] = "auto",
    dropout: Annotated[float, typer.Option(
        help="Dropout rate of the hidden layers.", callback=in_range(0, 1),
        rich_help_panel=_MODEL)] = 0.0,
    dtype: Annotated[DType, typer.Option(help="Floating type.", rich_help_panel=_MODEL)
                     ] = "float32",
    optimizer: Annotated[OptimizerName, typer.Option(
        help="Optimizer.", rich_help_panel=_OPTIMIZATION)] = "adam",
    lr: Annotated[float | None, typer.Option(
        help="Learning rate (default: the optimizer's, as in PyTorch).",
        callback=in_range(0, low_open=True), rich_help_panel=_OPTIMIZATION,
        show_default=False)] = None,
    momentum: Annotated[float | None, typer.Option(
        help="Momentum (sgd, rmsprop).", callback=in_range(0, 1),
        rich_help_panel=_OPTIMIZATION, show_default=False)] = None,
    weight_decay: Annotated[float | None, typer.Option(
        help="The optimizer's weight decay (PyTorch's; default: the optimizer's).",
        callback=in_range(0), rich_help_panel=_OPTIMIZATION, show_default=False)] = None,
    l2: Annotated[float, typer.Option(
        help="The book's L2 regularization lambda: lambda/(2n) times the sum of squared "
             "weights.", callback=in_range(0), rich_help_panel=_OPTIMIZATION)] = 0.0,
    batch_size: Annotated[int, typer.Option(
        help="Samples per update.", min=1, rich_help_panel=_OPTIMIZATION)] = 32,
    epochs: Annotated[int, typer.Option(
        help="Epochs to train in all (with --resume: up to this many).", min=1,
        rich_help_panel=_OPTIMIZATION)] = 30,
    seed: Annotated[int, typer.Option(
        help="Seeds the weights, dropout, shuffling and validation split.", min=0,
        rich_help_panel=_OPTIMIZATION)] = 0,
    validation_fraction: Annotated[float, typer.Option(
        help="Share of the training data held out for validation.", callback=in_range(0, 1),
        rich_help_panel=_OPTIMIZATION)] = 0.1,
    clip_grad_norm: Annotated[float | None, typer.Option(
        help="Rescale each batch's gradient whose Euclidean norm exceeds this (against "
             "divergence).", callback=in_range(0, low_open=True),
        rich_help_panel=_OPTIMIZATION, show_default=False)] = None,
    early_stopping: Annotated[bool, typer.Option(
        "--early-stopping", help="Stop when the validation loss stops improving and keep the "
        "best weights.", rich_help_panel=_OPTIMIZATION)] = False,
    patience: Annotated[int, typer.Option(
        help="Epochs without improvement before early stopping.", min=1,
        rich_help_panel=_OPTIMIZATION)] = 5,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default: runs/<date-time>).", rich_help_panel=_RUN,
        show_default=False)] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out from its checkpoint, up to --epochs.",
        rich_help_panel=_RUN)] = False,
    no_progress: Annotated[bool, typer.Option(
        "--no-progress", help="No progress bar.", rich_help_panel=_RUN)] = False,
    json: Annotated[bool, typer.Option(
        "--json", help="Print the metrics as JSON instead of a table.", rich_help_panel=_RUN)
                    ] = False,
    diagnostics: Annotated[bool, typer.Option(
        "--diagnostics", help="Record per-layer gradient and weight norms, update ratios, dead "
        "ReLUs and saturated units in history.csv, and draw diagnostics.png.",
        rich_help_panel=_RUN)] = False,
    threads: Annotated[int | None, typer.Option(
        help="BLAS threads (default: as the BLAS library decides).", min=1,
        rich_help_panel=_RUN, show_default=False)] = None,
) -> None:
    """Train a network on a dataset; with no options, a small network on the 8x8 digits.

    Writes to --out: model.safetensors, metrics.json, history.csv, curves.png, checkpoints
    (and diagnostics.png with --diagnostics). Ctrl-C stops after the current epoch, keeping its
    checkpoint (exit code 130); a diverging run stops with the last good checkpoint kept.
    """
    options = dict(locals())
    options.pop("ctx")
    explicit = {name for name in options
                if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}
    out = out if out is not None else _new_run_folder()
    setup = prepare(options, explicit, out)
    communicator = get_communicator("auto")
    root = communicator.rank == 0  # under mpiexec, only rank 0 writes and prints
    created = root and not out.exists()
    if root:
        out.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, *FINAL_FILES, _DIAGNOSTICS_PLOT):  # of a killed process
            remove_temporaries(out / name)
    try:
        _train(out, setup, options, root, single=communicator.size == 1)
    except BaseException:
        if created and not any(out.iterdir()):  # nothing to keep: leave no empty folder
            out.rmdir()
        raise


def _train(out: Path, setup: Setup, options: dict, root: bool, single: bool) -> None:
    """Train, checkpointing every epoch, then write and print the results (``root``); stop
    cleanly on divergence and on Ctrl-C (``single``: one process, which handles it)."""
    checkpoint = CheckpointCallback(out / CHECKPOINT, seed=setup.config["seed"],
                                    history=setup.history,
                                    metadata=_report.model_metadata(setup))
    interrupt = StopOnInterrupt(notice=_say)
    # the guard before everything that saves; the recorder before the checkpoint, which copies
    # the epoch's logs
    callbacks = [DivergenceGuard(hint=_HINT), checkpoint, interrupt]
    hooks = []
    # a resumed run records what it recorded before: every history column needs every epoch
    recorded = setup.history is not None and bool(diagnostic_columns(setup.history))
    if options["diagnostics"] and setup.history is not None and not recorded:
        raise usage_error(f"the run in {out} was trained without --diagnostics; they cannot "
                          "start in the middle of a run", "--diagnostics")
    if options["diagnostics"] or recorded:
        recorder = Diagnostics(probe=setup.X_train[:_PROBE])
        callbacks.insert(1, recorder)
        hooks.append(recorder)
    if not options["no_progress"] and sys.stderr.isatty():
        callbacks.append(ProgressBar(console=stderr))
    config = setup.config
    best_epoch = None
    with _blas_threads(options["threads"]), interrupt if single else nullcontext():
        try:
            if setup.initial_epoch < config["epochs"]:  # else only the final files are missing
                best_epoch = fit(
                    setup.net, setup.X_train, setup.y_train, loss=setup.loss,
                    optimizer=setup.optimizer, batch_size=config["batch_size"],
                    epochs=config["epochs"], initial_epoch=setup.initial_epoch,
                    seed=config["seed"], validation_data=setup.validation,
                    callbacks=callbacks, gradient_hooks=hooks, l2=config["l2"],
                    early_stopping=config["early_stopping"], patience=config["patience"],
                    clip_grad_norm=config["clip_grad_norm"]).best_epoch
        except FloatingPointError as exc:
            raise FloatingPointError(_kept(str(exc).replace("(clip_grad_norm)", f"({_CLIP})"),
                                           out, checkpoint)) from None
        except KeyboardInterrupt:
            _stop_interrupted(out, options, checkpoint)
        if interrupt.requested and len(checkpoint.history) < config["epochs"]:
            _stop_interrupted(out, options, checkpoint)
        if not root:
            return
        test = score(setup.net, setup.loss, setup.data.X_test, setup.data.y_test)
    document = _report.metrics(setup, checkpoint.history, test, best_epoch)
    _report.write_outputs(out, setup, checkpoint.history, document)
    if hooks:
        with atomic_path(out / _DIAGNOSTICS_PLOT) as path:
            plot_diagnostics(checkpoint.history, path,
                             title=f"{setup.data.name}: {config['layers']}")
    if options["json"]:
        print_json(document)
    else:
        _report.print_summary(document, out)


def _kept(message: str, out: Path, checkpoint: CheckpointCallback) -> str:
    """``message``, and which checkpoint the stopped run leaves."""
    if checkpoint.history and (out / CHECKPOINT).exists():
        return (f"{message}; the checkpoint of epoch {len(checkpoint.history)} is kept in "
                f"{out / CHECKPOINT}")
    return f"{message}; no epoch finished, so nothing was saved"


def _stop_interrupted(out: Path, options: dict, checkpoint: CheckpointCallback) -> None:
    """Say what Ctrl-C left and how to continue, then exit with code 130."""
    epochs = len(checkpoint.history)
    if epochs and (out / CHECKPOINT).exists():
        command = ["matrixprop", "train", "--out", str(out), "--resume", "--epochs",
                   str(options["epochs"])]
        if options["data_dir"] is not None:
            command += ["--data-dir", str(options["data_dir"])]
        _say(f"interrupted after epoch {epochs}: its checkpoint is in {out / CHECKPOINT}; "
             f"continue with: {shlex.join(command)}")
    else:
        _say("interrupted in the first epoch: nothing was saved")
    raise typer.Exit(EXIT_CODE)


def _say(line: str) -> None:
    """One line on standard error (not wrapped)."""
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _new_run_folder() -> Path:
    """``runs/<date-time>``, with a suffix if a run of the same second exists."""
    base = Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _blas_threads(threads: int | None) -> AbstractContextManager:
    """Limit the BLAS library to ``threads`` threads inside the block (None: no limit)."""
    if threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    from .. import accelerated

    accelerated.load_blas()  # the compiled engine's BLAS is limited too
    return threadpool_limits(limits=threads, user_api="blas")
