"""Reproduce the published MNIST results through the ``matrixprop train`` command.

Three recipes, each trained on all 60,000 MNIST training images and scored on the 10,000 test
images, one run per seed, one run at a time:

- ``nielsen``: the book's first network (chapter 1), [784,30,10] sigmoid, half squared error
  averaged over the batch, SGD lr 3.0, batches of 10, 30 epochs, N(0, 1) weights and biases.
- ``chapter3``: the book's improved network, [784,100,10] sigmoid, binary cross-entropy averaged
  over the batch, L2 lambda 5.0, SGD lr 0.1, batches of 10, 60 epochs, N(0, 1/n_in) weights.
- ``mlp``: beyond the book, [784,512,256,10] ReLU with dropout, softmax cross-entropy, SGD
  with momentum.

Every command is printed before it runs; at the end a Markdown table gives each run's test
accuracy and training time, with the CPU and the load average (a busy machine trains slower)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/mnist_reproduce.py
    python benchmarks/mnist_reproduce.py --recipes nielsen --seeds 0 1 2 --dry-run
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import environment  # noqa: E402


@dataclass(frozen=True)
class Recipe:
    """A network and its training settings, as ``matrixprop train`` options."""

    title: str
    book: str  # the published figure, or "-"
    options: tuple[str, ...]


RECIPES = {
    "nielsen": Recipe(
        "[784,30,10] sigmoid, half SSE (batchmean), SGD lr 3.0, batch 10, 30 epochs, "
        "N(0,1) init", "95.42% (best of 3, 50,000 training images)",
        ("--layers", "784,30,10", "--activation", "sigmoid", "--loss", "half_sse",
         "--reduction", "batchmean", "--optimizer", "sgd", "--lr", "3.0", "--batch-size", "10",
         "--epochs", "30", "--init", "normal")),
    "chapter3": Recipe(
        "[784,100,10] sigmoid, binary cross-entropy (batchmean), L2 lambda 5.0, SGD lr 0.1, "
        "batch 10, 60 epochs, N(0,1/n_in) weights", "98.04% (best of 3, 50,000 training images)",
        ("--layers", "784,100,10", "--activation", "sigmoid", "--loss", "binary_cross_entropy",
         "--reduction", "batchmean", "--l2", "5.0", "--optimizer", "sgd", "--lr", "0.1",
         "--batch-size", "10", "--epochs", "60", "--init", "normal_scaled")),
    "mlp": Recipe(
        "[784,512,256,10] relu, dropout 0.2, softmax cross-entropy, SGD lr 0.05 momentum 0.9, "
        "batch 64, 20 epochs", "-",
        ("--layers", "784,512,256,10", "--activation", "relu", "--dropout", "0.2",
         "--loss", "cross_entropy", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
         "--batch-size", "64", "--epochs", "20")),
}


def command(recipe: Recipe, seed: int, data_dir: Path | None, threads: int | None,
            out: Path) -> list[str]:
    """The ``matrixprop train`` command line of one run (None: the CLI's default)."""
    where = ["--data-dir", str(data_dir)] if data_dir is not None else []
    limit = ["--threads", str(threads)] if threads is not None else []
    return ["matrixprop", "train", "--dataset", "mnist", *where, *recipe.options,
            "--validation-fraction", "0", "--seed", str(seed), *limit, "--no-progress",
            "--json", "--out", str(out)]


def run(argv: list[str]) -> dict:
    """Run one command (as ``python -m matrixprop``) and return its metrics."""
    result = subprocess.run([sys.executable, "-m", "matrixprop", *argv[1:]],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the run failed (exit {result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


def markdown(rows: Sequence[dict]) -> str:
    """The runs as a Markdown table."""
    lines = ["| recipe | seed | test accuracy | training time | load before/after | book |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(
            f"| {row['recipe']} | {row['seed']} | {100 * row['test_accuracy']:.2f}% | "
            f"{row['train_seconds']:.0f} s | {row['load_before']:.1f} / {row['load_after']:.1f} "
            f"| {RECIPES[row['recipe']].book} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of the four MNIST IDX files (default: the CLI's search)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads of each run (default: as the BLAS library decides; "
                             "1 on a machine busy with other work)")
    parser.add_argument("--out", type=Path, default=None,
                        help="parent folder of the runs (default: runs/mnist-<date-time>)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the rows as JSON")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or Path("runs") / time.strftime("mnist-%Y%m%d-%H%M%S")
    rows = []
    for name in args.recipes:
        for seed in args.seeds:
            line = command(RECIPES[name], seed, args.data_dir, args.threads,
                           out / f"{name}-{seed}")
            print("$ " + shlex.join(line), flush=True)
            if args.dry_run:
                continue
            before = environment.load_average()
            metrics = run(line)
            row = {"recipe": name, "seed": seed, "test_accuracy": metrics["test_accuracy"],
                   "train_seconds": metrics["train_seconds"], "load_before": before,
                   "load_after": environment.load_average(), "command": shlex.join(line)}
            print(f"  test accuracy {100 * row['test_accuracy']:.2f}%, "
                  f"{row['train_seconds']:.1f} s", flush=True)
            rows.append(row)
    if rows:
        env = environment.describe(torch_threads=None, load=rows[0]["load_before"])
        print("\n" + "\n".join([*environment.markdown(env), "", markdown(rows)]))
        if args.json:
            args.json.write_text(json.dumps({"environment": env, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
