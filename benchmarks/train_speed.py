"""Training speed of matrixprop beside PyTorch, scikit-learn, JAX and the GEMM bound, in ONE run.

For each configuration of ``cases.CASES`` every contender is warmed up once, then run once in
turn in each of ``--repeats`` repetitions (paired) on the same data. The table gives the median
samples/s of each contender and the median over the repetitions of the paired ratios
matrixprop/other. ``--optimizer`` and ``--dtype`` run every row with another optimizer or in
float64 (JAX then sits out). Run it with OpenBLAS's kernel unpinned::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_speed.py --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import contenders as c  # noqa: E402
from benchmarks import environment  # noqa: E402
from benchmarks.cases import (  # noqa: E402
    CASES,
    DTYPES,
    OPTIMIZERS,
    Case,
    describe_optimizer,
    make_data,
    read_mnist,
)

# name, factory for training cases, factory for inference cases, module it needs, whether it
# runs every optimizer and dtype (JAX: plain SGD in float32 only)
CONTENDERS = (
    ("matrixprop", c.matrixprop_train, c.matrixprop_predict, None, True),
    ("mp NumPy", c.matrixprop_numpy_train, c.matrixprop_numpy_predict, None, True),
    ("PyTorch", c.torch_train, c.torch_predict, "torch", True),
    ("sklearn", c.sklearn_train, None, "sklearn.neural_network", True),
    ("JAX step", c.jax_step, None, "jax", False),
    ("JAX scan", c.jax_scan, None, "jax", False),
    ("GEMM bound", c.gemm_bound, c.gemm_bound, None, True),
)
NAMES = [name for name, *_ in CONTENDERS]
K = TypeVar("K", bound=Hashable)
QUICK_REPEATS = 2
# After its last call a thread pool spins for a while before it sleeps (OpenBLAS, OpenMP and
# XLA's pools: up to about 0.2 s here): without a pause those threads would share the cores
# with the next contender's run.
SETTLE_SECONDS = 0.3


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=list(CASES), default=list(CASES),
                        metavar="KEY", help=f"rows to run (default all): {', '.join(CASES)}")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd",
                        help="the optimizer of every framework (default: plain SGD)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="the data's, weights' and arithmetic's dtype (default float32)")
    return common_arguments(parser, argv)


def common_arguments(parser: argparse.ArgumentParser,
                     argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Add the options every speed script shares to ``parser``, parse ``argv`` and check them."""
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"paired repetitions (default 5, {QUICK_REPEATS} with --quick)")
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per epoch for every row (default: each row's own)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~30 s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="BLAS, OpenMP and torch threads (default: the core count)")
    parser.add_argument("--mnist", metavar="DIR", help="use MNIST's IDX training files in DIR")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else 5
    for name in ("repeats", "samples", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    return args


def available_contenders(train: bool, plain: bool = True) -> tuple[dict, list[str]]:
    """``name -> factory`` for the contenders whose framework imports, and notes on the rest.

    ``plain`` is False when the run asks for another optimizer than plain SGD or for float64:
    the contenders that cannot honour it sit out.
    """
    chosen, notes = {}, []
    for name, train_factory, predict_factory, module, any_setting in CONTENDERS:
        factory = train_factory if train else predict_factory
        if factory is None:
            continue
        if module is not None and environment.try_import(module) is None:
            notes.append(f"{name} skipped: {module.split('.')[0]} is not installed")
            continue
        if not (plain or any_setting):
            notes.append(f"{name} skipped: it runs plain SGD in float32 only")
            continue
        chosen[name] = factory
    return chosen, notes


def paired(runs: dict[K, c.Run], repeats: int, label: str) -> dict[K, list[c.Timing]]:
    """Warm every run up once, then call each once per repetition, in turn (the order reversed
    every other repetition), each after a pause of ``SETTLE_SECONDS``."""
    for run in runs.values():
        run()
    timings: dict[K, list[c.Timing]] = {name: [] for name in runs}
    for rep in range(repeats):
        print(f"  {label}: repetition {rep + 1}/{repeats}", file=sys.stderr, flush=True)
        for name in list(runs) if rep % 2 == 0 else list(runs)[::-1]:
            time.sleep(SETTLE_SECONDS)
            timings[name].append(runs[name]())
    return timings


def measure(case: Case, X, y, repeats: int, seed: int) -> dict[str, list[c.Timing]]:
    """Every available contender of ``case``, in paired repetitions."""
    factories, _ = available_contenders(case.train, _plain(case))
    runs = {name: factory(case, X, y, seed) for name, factory in factories.items()}
    return paired(runs, repeats, case.key)


def _plain(case: Case) -> bool:
    return (case.optimizer, case.dtype) == ("sgd", "float32")


def summarize(case: Case, timings: dict[str, list[c.Timing]]) -> dict:
    """Medians of samples/s and of the paired ratios matrixprop/other."""
    rates = {name: [t.samples_per_second for t in ts] for name, ts in timings.items()}
    ours = rates["matrixprop"]
    gemm = [t.gflops for t in timings.get("GEMM bound", []) if t.gflops is not None]
    return {
        "key": case.key, "label": case.label, "sizes": list(case.sizes),
        "activation": case.activation, "loss": case.loss, "batch": case.batch,
        "train": case.train, "samples": timings["matrixprop"][0].samples,
        "samples_per_second": rates,
        "median": {name: statistics.median(r) for name, r in rates.items()},
        "ratios": {name: statistics.median(a / b for a, b in zip(ours, r, strict=True))
                   for name, r in rates.items() if name != "matrixprop"},
        "gemm_gflops": statistics.median(gemm) if gemm else None,
    }


def _rate(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1e3:
        return f"{value:.0f}"
    return f"{value / 1e3:,.1f}k" if value < 1e5 else f"{value / 1e3:,.0f}k"


def table(results: list[dict]) -> list[str]:
    """The results as a Markdown table."""
    others = NAMES[1:]
    header = ["network, batch", "samples", *NAMES, *(f"mp/{name}" for name in others)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        cells = [r["label"], f"{r['samples']:,}", *(_rate(r["median"].get(n)) for n in NAMES)]
        cells += [f"{r['ratios'][n]:.2f}" if n in r["ratios"] else "–" for n in others]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(env: dict, warnings: list[str], notes: list[str], settings: dict,
           results: list[dict]) -> str:
    """The whole Markdown report: warnings, environment, settings, table."""
    lines = ["# matrixprop training speed (samples/s, median of paired repetitions)", ""]
    lines += [line for warning in warnings for line in (f"**{warning}**", "")]
    lines += environment.markdown(env)
    lines += [f"- {settings['data']}; {describe_optimizer(settings['optimizer'])}, "
              f"{settings['dtype']}; repetitions: {settings['repeats']}, "
              f"threads: {settings['threads']}"]
    lines += [f"- {note}" for note in notes]
    return "\n".join([*lines, "", *table(results)])


def epoch_samples(case: Case, args: argparse.Namespace) -> int:
    """Samples per timed epoch of ``case``: ``--samples``, else the case's own (quick) size."""
    return case.epoch_samples(
        args.samples or (case.quick_samples if args.quick else case.samples))


def load_data(args: argparse.Namespace, n: int):
    """``(X, y, description)``: ``n`` MNIST images with ``--mnist``, else random data."""
    if args.mnist:
        X, y = read_mnist(args.mnist, n)
        return X, y, f"MNIST training images from {Path(args.mnist).name}"
    X, y = make_data(n, args.seed)
    return X, y, "random MNIST-shaped data"


@contextmanager
def limited_threads(threads: int, load: float | None) -> Iterator[tuple[dict, list[str]]]:
    """Run the block with ``threads`` BLAS, OpenMP and torch threads; yield the environment
    (described under those limits) and the warnings about it, which are printed on stderr.

    ``load`` is the load average taken before the script started its own work.
    """
    available_contenders(train=True)  # imports every framework before the limits
    torch = environment.try_import("torch")
    with threadpool_limits(limits=threads):
        if torch is not None:
            torch.set_num_threads(threads)
        env = environment.describe(torch.get_num_threads() if torch is not None else None, load)
        warnings = [w for w in (environment.pinned_warning(env), environment.busy_warning(env))
                    if w]
        for warning in warnings:
            print(warning, file=sys.stderr, flush=True)
        yield env, warnings


def write_json(path: str | None, **content) -> None:
    """Write ``content`` as indented JSON to ``path`` (nothing when ``path`` is None)."""
    if path:
        with open(path, "w") as handle:
            json.dump(content, handle, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    load = environment.load_average()  # before this process adds its own load
    args = parse_args(argv)
    cases = [dataclasses.replace(CASES[key], optimizer=args.optimizer, dtype=args.dtype)
             for key in args.configs]
    sizes = {case.key: epoch_samples(case, args) for case in cases}
    X, y, data = load_data(args, max(sizes.values()))
    X = X.astype(args.dtype, copy=False)  # once, shared by every contender
    plain = (args.optimizer, args.dtype) == ("sgd", "float32")
    _, notes = available_contenders(train=True, plain=plain)
    with limited_threads(args.threads, load) as (env, warnings):
        results = []
        for case in cases:
            m = sizes[case.key]
            print(f"{case.key}: {m:,} samples", file=sys.stderr, flush=True)
            results.append(summarize(case, measure(case, X[:m], y[:m], args.repeats, args.seed)))
    settings = {"repeats": args.repeats, "threads": args.threads, "optimizer": args.optimizer,
                "dtype": args.dtype, "quick": args.quick, "data": data, "seed": args.seed,
                "notes": notes}
    print(report(env, warnings, notes, settings, results))
    write_json(args.json, environment=env, settings=settings, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
