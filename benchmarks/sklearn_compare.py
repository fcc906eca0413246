"""matrixprop.sklearn beside scikit-learn's own MLPClassifier, with the same hyper-parameters.

For each dataset (digits, breast_cancer, wine) both classifiers run in a pipeline after a
StandardScaler, with scikit-learn's defaults and ``random_state=0``, under 5-fold
cross-validation (scikit-learn's default stratified folds); ``--repeats`` times, in turn
(paired, the order swapped every repetition). The table gives each one's mean fold accuracy, the
median of its total fit time over the five folds, and the median of the paired ratios
matrixprop / scikit-learn, in wall-clock time and in the process's CPU time. With one BLAS
thread (``--threads 1``) the CPU time is the work itself, the steadier figure on a machine that
other processes share. With ``--mnist DIR`` both are fitted on MNIST's 60,000 training images
(float32 in [0, 1], unscaled) with the same defaults and scored on the 10,000 test images;
``--mnist-max-iter`` caps the epochs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/sklearn_compare.py \\
        --mnist DIR   # a folder with the MNIST IDX files
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn import datasets  # noqa: E402
from sklearn import neural_network as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import environment  # noqa: E402
from matrixprop import sklearn as mps  # noqa: E402

DATASETS = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
            "wine": datasets.load_wine}
CONTENDERS = {"sklearn": sk.MLPClassifier, "matrixprop": mps.MLPClassifier}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--repeats", type=int, default=5, help="paired repetitions (default 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (threadpoolctl; default: the library's own)")
    parser.add_argument("--mnist", metavar="DIR", help="also fit MNIST, read from DIR")
    parser.add_argument("--mnist-max-iter", type=int, default=200,
                        help="epochs at most on MNIST (default 200, scikit-learn's)")
    parser.add_argument("--mnist-repeats", type=int, default=1,
                        help="paired repetitions on MNIST (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def _paired(repeats: int, run) -> dict:
    """``run(name)`` for both contenders in every repetition, the order swapped each time."""
    results = {name: [] for name in CONTENDERS}
    for rep in range(repeats):
        for name in (list(CONTENDERS) if rep % 2 == 0 else list(CONTENDERS)[::-1]):
            results[name].append(run(name))
    return results


def _summary(results: dict) -> dict:
    ours, theirs = results["matrixprop"], results["sklearn"]
    summary = {"n_iter": {name: results[name][0]["n_iter"] for name in CONTENDERS}}
    for name in CONTENDERS:
        summary[f"{name}_accuracy"] = statistics.mean(r["accuracy"] for r in results[name])
        for clock in ("seconds", "cpu_seconds"):
            summary[f"{name}_{clock}"] = statistics.median(r[clock] for r in results[name])
    for clock, key in (("seconds", "ratio"), ("cpu_seconds", "cpu_ratio")):
        summary[key] = statistics.median(a[clock] / b[clock]
                                         for a, b in zip(ours, theirs, strict=True))
    return summary


def _timed_fit(model, X, y) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``model.fit(X, y)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(X, y)
    return time.perf_counter() - wall, time.process_time() - cpu


def compare_dataset(name: str, repeats: int) -> dict:
    """5-fold cross-validation of both classifiers on one of scikit-learn's datasets."""
    X, y = DATASETS[name](return_X_y=True)
    folds = list(StratifiedKFold(5).split(X, y))

    def run(contender: str) -> dict:
        pipeline = make_pipeline(StandardScaler(), CONTENDERS[contender](random_state=0))
        accuracy, wall, cpu, n_iter = [], 0.0, 0.0, []
        for train, test in folds:
            model = clone(pipeline)
            seconds, cpu_seconds = _timed_fit(model, X[train], y[train])
            wall, cpu = wall + seconds, cpu + cpu_seconds
            accuracy.append(model.score(X[test], y[test]))
            n_iter.append(int(model[-1].n_iter_))
        return {"accuracy": statistics.mean(accuracy), "seconds": wall, "cpu_seconds": cpu,
                "n_iter": n_iter}

    return _summary(_paired(repeats, run))


def compare_mnist(folder: str, max_iter: int, repeats: int) -> dict:
    """Both classifiers fitted on MNIST's training set and scored on its test set."""
    from matrixprop.data import load_dataset

    data = load_dataset("mnist", folder, download=False)

    def run(contender: str) -> dict:
        model = CONTENDERS[contender](random_state=0, max_iter=max_iter)
        seconds, cpu_seconds = _timed_fit(model, data.X_train, data.y_train)
        return {"accuracy": float(model.score(data.X_test, data.y_test)), "seconds": seconds,
                "cpu_seconds": cpu_seconds, "n_iter": int(model.n_iter_)}

    return _summary(_paired(repeats, run))


def markdown(rows: dict, env: dict) -> str:
    lines = ["| data | accuracy sklearn / matrixprop | fit s sklearn / matrixprop "
             "| ratio | CPU s sklearn / matrixprop | CPU ratio | epochs sklearn / matrixprop |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['sklearn_accuracy']:.4f} / {row['matrixprop_accuracy']:.4f} "
            f"| {row['sklearn_seconds']:.3f} / {row['matrixprop_seconds']:.3f} "
            f"| {row['ratio']:.2f} | {row['sklearn_cpu_seconds']:.3f} / "
            f"{row['matrixprop_cpu_seconds']:.3f} | {row['cpu_ratio']:.2f} "
            f"| {row['n_iter']['sklearn']} / {row['n_iter']['matrixprop']} |")
    warnings_ = filter(None, (environment.pinned_warning(env), environment.busy_warning(env)))
    return "\n".join([*lines, "", *environment.markdown(env), *warnings_])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load = environment.load_average()
    warnings.simplefilter("ignore", ConvergenceWarning)
    limits = threadpool_limits(args.threads) if args.threads else nullcontext()
    rows = {}
    with limits:
        env = environment.describe(None, load)
        for name in args.datasets:
            rows[name] = compare_dataset(name, args.repeats)
        if args.mnist:
            rows["mnist"] = compare_mnist(args.mnist, args.mnist_max_iter, args.mnist_repeats)
    print(markdown(rows, env))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "environment": env}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
