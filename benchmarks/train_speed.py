"""Training speed of matrixprop beside PyTorch, scikit-learn, JAX and the GEMM bound, in ONE run.

For each configuration of GUIDE section 7 every contender is warmed up once, then run once in
turn in each of ``--repeats`` repetitions (paired) on the same data. The table gives the median
samples/s of each contender and the median over the repetitions of the paired ratios
matrixprop/other. Run it with OpenBLAS's kernel unpinned::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_speed.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import contenders as c  # noqa: E402
from benchmarks import environment  # noqa: E402
from benchmarks.cases import CASES, LR, Case, make_data, read_mnist  # noqa: E402

# name, factory for training cases, factory for inference cases, module it needs
CONTENDERS = (
    ("matrixprop", c.matrixprop_train, c.matrixprop_predict, None),
    ("mp NumPy", c.matrixprop_numpy_train, None, None),
    ("PyTorch", c.torch_train, c.torch_predict, "torch"),
    ("sklearn", c.sklearn_train, None, "sklearn.neural_network"),
    ("JAX step", c.jax_step, None, "jax"),
    ("JAX scan", c.jax_scan, None, "jax"),
    ("GEMM bound", c.gemm_bound, c.gemm_bound, None),
)
NAMES = [name for name, *_ in CONTENDERS]
QUICK_REPEATS = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=list(CASES), default=list(CASES),
                        metavar="KEY", help=f"rows to run (default all): {', '.join(CASES)}")
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


def available_contenders(train: bool) -> tuple[dict, list[str]]:
    """``name -> factory`` for the contenders whose framework imports, and notes on the rest."""
    chosen, notes = {}, []
    for name, train_factory, predict_factory, module in CONTENDERS:
        factory = train_factory if train else predict_factory
        if factory is None:
            continue
        if module is not None and environment.try_import(module) is None:
            notes.append(f"{name} skipped: {module.split('.')[0]} is not installed")
            continue
        chosen[name] = factory
    return chosen, notes


def measure(case: Case, X, y, repeats: int, seed: int) -> dict[str, list[c.Timing]]:
    """Warm every contender up once, then run each once per repetition, in turn."""
    factories, _ = available_contenders(case.train)
    runs = {name: factory(case, X, y, seed) for name, factory in factories.items()}
    for run in runs.values():
        run()
    timings: dict[str, list[c.Timing]] = {name: [] for name in runs}
    for rep in range(repeats):
        print(f"  {case.key}: repetition {rep + 1}/{repeats}", file=sys.stderr, flush=True)
        for name, run in runs.items():
            timings[name].append(run())
    return timings


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
    lines += [f"- {settings['data']}; plain SGD lr {LR}, float32; repetitions: "
              f"{settings['repeats']}, threads: {settings['threads']}"]
    lines += [f"- {note}" for note in notes]
    return "\n".join([*lines, "", *table(results)])


def main(argv: Sequence[str] | None = None) -> int:
    load = environment.load_average()  # before this process adds its own load
    args = parse_args(argv)
    cases = [CASES[key] for key in args.configs]
    sizes = {case.key: case.epoch_samples(
        args.samples or (case.quick_samples if args.quick else case.samples)) for case in cases}
    n = max(sizes.values())
    X, y = read_mnist(args.mnist, n) if args.mnist else make_data(n, args.seed)
    _, notes = available_contenders(train=True)  # imports every framework before the limits
    torch = environment.try_import("torch")
    with threadpool_limits(limits=args.threads):
        if torch is not None:
            torch.set_num_threads(args.threads)
        env = environment.describe(torch.get_num_threads() if torch is not None else None, load)
        warnings = [w for w in (environment.pinned_warning(env), environment.busy_warning(env))
                    if w]
        for warning in warnings:
            print(warning, file=sys.stderr, flush=True)
        results = []
        for case in cases:
            m = sizes[case.key]
            print(f"{case.key}: {m:,} samples", file=sys.stderr, flush=True)
            results.append(summarize(case, measure(case, X[:m], y[:m], args.repeats, args.seed)))
    data = f"MNIST training images from {Path(args.mnist).name}" if args.mnist else (
        "random MNIST-shaped float32 data")
    settings = {"repeats": args.repeats, "threads": args.threads, "lr": LR, "quick": args.quick,
                "data": data, "seed": args.seed, "notes": notes}
    print(report(env, warnings, notes, settings, results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"environment": env, "settings": settings, "results": results}, handle,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
