"""What a playground run exports: its model file, its data, and the equivalent command line.

The model is written by :func:`matrixprop.save`, so ``mp.load`` and every ``matrixprop``
command read it. The data is an ``.npz`` archive (``X``, ``y``, ``X_test``, ``y_test``) that
``matrixprop train --dataset`` reads; with it the command line repeats the run: the same initial
weights, batches and updates (a run here is ``Trainer.run_epoch``, as in ``mp.fit``), equal up to
float32 rounding where ``fit`` runs its epochs compiled (``matrixprop[fast]``).
"""

from __future__ import annotations

import io
import shlex
import tempfile
from pathlib import Path

import numpy as np

from ..io import save
from .session import Session

__all__ = ["command_line", "data_bytes", "data_filename", "model_bytes", "model_filename"]


def model_filename(session: Session) -> str:
    return f"playground-{session.config.dataset}.safetensors"


def data_filename(session: Session) -> str:
    return f"playground-{session.config.dataset}.npz"


def model_bytes(session: Session) -> bytes:
    """The network as a safetensors model file, with the loss and the run's settings."""
    with session.lock, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        metadata = {"loss": session.loss.config(),
                    "training": {**session.config.to_dict(), "epochs": session.epoch},
                    "dataset": {"name": data_filename(session),
                                "n_features": session.split.n_features,
                                "n_classes": None if session.regression else 2}}
        save(session.net, path, metadata)
        return path.read_bytes()


def data_bytes(session: Session) -> bytes:
    """The training and test samples as an ``.npz`` archive."""
    split, buffer = session.split, io.BytesIO()
    np.savez_compressed(buffer, X=split.X_train, y=split.y_train, X_test=split.X_test,
                        y_test=split.y_test)
    return buffer.getvalue()


def command_line(session: Session) -> dict:
    """The ``matrixprop train`` command that repeats the run on the exported data.

    Returns ``{"command": str, "exact": bool, "note": str}``: ``exact`` is False when the run
    uses layer-wise learning-rate multipliers, which the command line has no option for.
    """
    with session.lock:
        config, epochs = session.config, max(session.epoch, 1)
        layers = ",".join(str(width) for width in session.net.sizes)
        batch = config.batch_size or session.trainer.n
        args = ["matrixprop", "train", "--dataset", data_filename(session), "--layers", layers,
                "--activation", config.activation,
                "--output-activation", config.output_activation, "--loss", config.loss,
                "--optimizer", config.optimizer, "--lr", repr(config.lr),
                "--batch-size", str(min(batch, session.trainer.n)), "--l2", repr(config.l2),
                "--epochs", str(epochs), "--seed", str(config.seed),
                "--validation-fraction", "0", "--out", f"runs/playground-{config.dataset}"]
    exact = all(factor == 1.0 for factor in config.lr_multipliers)
    note = (f"trains {epochs} epoch(s) on {data_filename(session)} (the data export)" if exact
            else "the layer-wise learning-rate multipliers have no command-line option: in "
                 "Python pass optimizer lr={'layers.0.weight': ..., ...} (the command uses "
                 "one rate)")
    return {"command": shlex.join(args), "exact": exact, "note": note}
