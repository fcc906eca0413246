"""Kill ``matrixprop train`` at random moments, many times, and check what each kill leaves.

Run by ``tests/test_crash_safety.py`` in a subprocess of its own, because it forks: this process
runs the uninterrupted reference runs itself (which also loads every module and compiled kernel
once), then each run is a forked child calling the command's ``main`` (a fresh Python would
spend most of each run starting up). After every
SIGKILL, each file left in ``--out`` must load; the next run resumes from the checkpoint (or
starts afresh when there is none yet). When a run finishes, its weights and learning curve must
equal, bit for bit, those of a run that was never interrupted. Rounds alternate between a
network with dropout (the NumPy engine, the dropout generator's state in the checkpoint) and
one without (the compiled epochs where numba is installed).

Prints a JSON summary; exits with 1 and a message at the first violation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

import matrixprop as mp
from matrixprop.checkpoint import load_checkpoint
from matrixprop.cli import main

CHECKPOINT, MODEL = "checkpoint.safetensors", "model.safetensors"
FINAL_FILES = (MODEL, "metrics.json", "history.csv", "curves.png")
PNG_END = b"IEND\xaeB`\x82"


class Violation(Exception):
    """What a kill left is not what it should be."""


def start(argv: list[str], log: Path) -> int:
    """Fork a child that runs ``matrixprop ARGV`` with its output in ``log``."""
    pid = os.fork()
    if pid:
        return pid
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        code = main(argv)
    except BaseException:  # noqa: BLE001 - reported through the log and the exit code
        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def finish(pid: int) -> tuple[bool, int]:
    """Wait for the child: (killed by a signal, exit code or signal number)."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return True, os.WTERMSIG(status)
    return False, os.WEXITSTATUS(status)


def inspect(out: Path, epochs: int) -> dict:
    """Load every file the run left; return what was found. Raises Violation."""
    found = {"writing": _interrupted_writes(out)}
    if (out / CHECKPOINT).exists():
        try:
            checkpoint = load_checkpoint(out / CHECKPOINT)
        except ValueError as exc:
            raise Violation(f"the checkpoint left by a kill does not load: {exc}") from None
        if not 1 <= checkpoint.epoch <= epochs:
            raise Violation(f"checkpoint of epoch {checkpoint.epoch}")
        found["epoch"] = checkpoint.epoch
    if (out / MODEL).exists():
        try:
            found["model"] = mp.load(out / MODEL)
        except ValueError as exc:
            raise Violation(f"the model left by a kill does not load: {exc}") from None
    if (out / "metrics.json").exists():
        json.loads((out / "metrics.json").read_text())
    if (out / "history.csv").exists():
        rows = (out / "history.csv").read_text().splitlines()
        if len(rows) != epochs + 1:
            raise Violation(f"history.csv has {len(rows)} lines for {epochs} epochs")
    if (out / "curves.png").exists() and not (out / "curves.png").read_bytes().endswith(PNG_END):
        raise Violation("curves.png is not a whole PNG file")
    return found


def _interrupted_writes(out: Path) -> list[str]:
    """The files whose writing a kill interrupted: their temporary files are still there."""
    if not out.exists():
        return []
    names = [path.name for path in out.iterdir() if path.name.startswith(".")]
    return [next((known for known in (CHECKPOINT, *FINAL_FILES)
                  if name.startswith(f".{known}.")), name) for name in names]


def same_run(out: Path, reference: Path) -> None:
    """The finished run in ``out`` ended where the uninterrupted one did, bit for bit."""
    ours, theirs = mp.load(out / MODEL), mp.load(reference / MODEL)
    if not np.array_equal(ours.params, theirs.params):
        raise Violation("the resumed run's final weights differ from the uninterrupted run's")
    ours, theirs = load_checkpoint(out / CHECKPOINT), load_checkpoint(reference / CHECKPOINT)
    for key in ("loss", "val_loss"):
        if ours.history[key] != theirs.history[key]:
            raise Violation(f"the resumed run's {key} per epoch differs")
    for name, value in theirs.optimizer.state_dict().items():
        if not np.array_equal(ours.optimizer.state_dict()[name], value):
            raise Violation(f"the resumed run's optimizer state {name} differs")


def arguments(data: Path, epochs: int, dropout: float) -> list[str]:
    return ["train", "--dataset", str(data), "--layers", "4,8,3", "--dtype", "float64",
            "--optimizer", "adam", "--lr", "0.01", "--batch-size", "8", "--epochs", str(epochs),
            "--validation-fraction", "0.25", "--dropout", str(dropout), "--seed", "3",
            "--no-progress", "--json"]


def main_loop(folder: Path, kills: int, epochs: int, max_delay: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    data = folder / "tiny.npz"
    np.savez(data, X=rng.normal(size=(48, 4)), y=rng.integers(0, 3, 48))
    configs = [arguments(data, epochs, dropout) for dropout in (0.2, 0.0)]
    references = [folder / f"reference{i}" for i in range(len(configs))]
    for argv, reference in zip(configs, references, strict=True):  # never interrupted
        with open(os.devnull, "w") as sink, redirect_stdout(sink):
            if main(argv + ["--out", str(reference)]) != 0:
                raise Violation("the uninterrupted run failed")
    random.seed(seed)
    summary = {"kills": 0, "runs": 0, "rounds": 0, "checkpoints_loaded": 0, "models_loaded": 0,
               "kills_before_a_checkpoint": 0, "kills_while_writing": {}, "epochs_at_kills": []}
    out, config = folder / "run", 0
    while summary["kills"] < kills or out.exists():
        argv = configs[config] + ["--out", str(out)]
        if (out / CHECKPOINT).exists():
            argv.append("--resume")
        pid = start(argv, folder / "log")
        summary["runs"] += 1
        if summary["kills"] < kills:
            time.sleep(random.uniform(0.0, max_delay))
            os.kill(pid, signal.SIGKILL)  # a child that already exited is a zombie: no-op
        killed, code = finish(pid)
        found = inspect(out, epochs)
        summary["checkpoints_loaded"] += "epoch" in found
        summary["models_loaded"] += "model" in found
        if killed:
            summary["kills"] += 1
            summary["epochs_at_kills"].append(found.get("epoch", 0))
            summary["kills_before_a_checkpoint"] += "epoch" not in found
            for name in found["writing"]:
                writing = summary["kills_while_writing"]
                writing[name] = writing.get(name, 0) + 1
            if not all((out / name).exists() for name in FINAL_FILES):
                continue  # else killed after its last file: the round is over
        elif code != 0:
            raise Violation(f"run {summary['runs']} exited with {code}: "
                            f"{(folder / 'log').read_text()}")
        elif found["writing"]:
            raise Violation("a finished run left temporary files")
        same_run(out, references[config])
        summary["rounds"] += 1
        shutil.rmtree(out)
        config = 1 - config
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--max-delay", type=float, default=0.4, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    try:
        result = main_loop(options.folder, options.kills, options.epochs, options.max_delay,
                           options.seed)
    except Violation as exc:
        sys.stdout.write(json.dumps({"violation": str(exc)}) + "\n")
        sys.exit(1)
    sys.stdout.write(json.dumps(result) + "\n")
