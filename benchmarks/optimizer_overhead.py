"""What an optimizer costs over plain SGD, and float64 beside PyTorch's float64, in ONE run.

One network and batch (default ``relu256_b128``: [784,256,128,10] relu, softmax cross-entropy,
batch 128) trains with plain SGD, SGD with momentum 0.9, Nesterov momentum and Adam, in float32
and float64, in matrixprop (the compiled path and the NumPy engine) and PyTorch. Every
(framework, optimizer) pair of a dtype is warmed up, then runs one epoch in turn in each
repetition (paired). Reported: the median samples/s, the paired ratios matrixprop/PyTorch, and
each optimizer's overhead in its own framework, the median over the repetitions of
``epoch time with the optimizer / epoch time with plain SGD - 1``. Run it unpinned::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/optimizer_overhead.py
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import contenders as c  # noqa: E402
from benchmarks import environment  # noqa: E402
from benchmarks.cases import CASES, DTYPES, OPTIMIZERS, describe_optimizer  # noqa: E402
from benchmarks.train_speed import (  # noqa: E402
    common_arguments,
    epoch_samples,
    limited_threads,
    load_data,
    paired,
    write_json,
)

# name, training factory, module it needs
FRAMEWORKS = (
    ("matrixprop", c.matrixprop_train, None),
    ("mp NumPy", c.matrixprop_numpy_train, None),
    ("PyTorch", c.torch_train, "torch"),
)
PLAIN = "sgd"
# issue 5's targets: the most an optimizer may cost over plain SGD, and float64 vs PyTorch
OVERHEAD_TARGETS = {"momentum": 0.10, "adam": 0.25}
FLOAT64_TARGET = 0.9
TRAIN_KEYS = [key for key, case in CASES.items() if case.train]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=TRAIN_KEYS, default="relu256_b128",
                        help="the network and batch (default relu256_b128)")
    parser.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS),
                        default=list(OPTIMIZERS),
                        help="optimizers to run (default all; plain SGD always runs)")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES),
                        help="dtypes to run (default both)")
    args = common_arguments(parser, argv)
    args.optimizers = [PLAIN, *(name for name in dict.fromkeys(args.optimizers) if name != PLAIN)]
    args.dtypes = list(dict.fromkeys(args.dtypes))
    return args


def available_frameworks() -> tuple[dict, list[str]]:
    """``name -> factory`` for the frameworks that import, and notes on the rest."""
    chosen, notes = {}, []
    for name, factory, module in FRAMEWORKS:
        if module is not None and environment.try_import(module) is None:
            notes.append(f"{name} skipped: {module} is not installed")
            continue
        chosen[name] = factory
    return chosen, notes


def measure(key: str, dtype: str, optimizers: Sequence[str], X, y, repeats: int,
            seed: int) -> dict[tuple[str, str], list[c.Timing]]:
    """``(framework, optimizer) -> timings`` of one dtype, in paired repetitions."""
    factories, _ = available_frameworks()
    runs = {}
    for optimizer in optimizers:
        case = dataclasses.replace(CASES[key], optimizer=optimizer, dtype=dtype)
        for name, factory in factories.items():
            runs[name, optimizer] = factory(case, X, y, seed)
    return paired(runs, repeats, f"{key} {dtype}")


def summarize(dtype: str, timings: dict[tuple[str, str], list[c.Timing]]) -> dict:
    """Median samples/s, paired ratios to PyTorch and paired overheads over plain SGD."""
    frameworks = list(dict.fromkeys(name for name, _ in timings))
    optimizers = list(dict.fromkeys(opt for _, opt in timings))

    def seconds(name, opt):
        return [t.seconds for t in timings[name, opt]]

    def paired_median(a, b):  # the median over the repetitions of a[i] / b[i]
        return statistics.median(x / y for x, y in zip(a, b, strict=True))

    summary = {
        "dtype": dtype,
        "samples": next(iter(timings.values()))[0].samples,
        "samples_per_second": {name: {opt: [t.samples_per_second for t in timings[name, opt]]
                                      for opt in optimizers} for name in frameworks},
        "overhead": {name: {opt: paired_median(seconds(name, opt), seconds(name, PLAIN)) - 1
                            for opt in optimizers if opt != PLAIN} for name in frameworks},
        "vs_torch": {},
    }
    summary["median"] = {name: {opt: statistics.median(rates) for opt, rates in by_opt.items()}
                         for name, by_opt in summary["samples_per_second"].items()}
    if "PyTorch" in frameworks:  # speed ratio = PyTorch's time / ours
        summary["vs_torch"] = {
            name: {opt: paired_median(seconds("PyTorch", opt), seconds(name, opt))
                   for opt in optimizers}
            for name in frameworks if name != "PyTorch"}
    return summary


def _rate(value: float) -> str:
    return f"{value / 1e3:,.1f}k" if value >= 1e3 else f"{value:.0f}"


def tables(results: list[dict]) -> list[str]:
    """Two Markdown tables: samples/s with the ratios to PyTorch, then the overheads."""
    frameworks = list(results[0]["median"])
    ours = list(results[0]["vs_torch"])
    header = ["optimizer, dtype", *frameworks, *(f"{name}/PyTorch" for name in ours)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        for opt in r["median"][frameworks[0]]:
            cells = [f"{opt}, {r['dtype']}", *(_rate(r["median"][n][opt]) for n in frameworks)]
            cells += [f"{r['vs_torch'][n][opt]:.2f}" for n in ours]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Overhead over plain SGD in the same framework (epoch time ratio - 1):", ""]
    header = ["optimizer, dtype", *frameworks, "target"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        for opt in r["overhead"][frameworks[0]]:
            target = OVERHEAD_TARGETS.get(opt)
            cells = [f"{opt}, {r['dtype']}", *(f"{r['overhead'][n][opt]:+.0%}" for n in frameworks),
                     "–" if target is None else f"<= {target:.0%}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(env: dict, warnings: list[str], notes: list[str], settings: dict,
           results: list[dict]) -> str:
    """The whole Markdown report: warnings, environment, settings, the two tables."""
    lines = ["# matrixprop optimizer overhead and float64 (median of paired repetitions)", ""]
    lines += [line for warning in warnings for line in (f"**{warning}**", "")]
    lines += environment.markdown(env)
    optimizers = "; ".join(f"{opt}: {describe_optimizer(opt)}" for opt in settings["optimizers"])
    lines += [f"- {CASES[settings['config']].label}, {results[0]['samples']:,} samples per "
              f"epoch, {settings['data']}; repetitions: {settings['repeats']}, threads: "
              f"{settings['threads']}",
              f"- {optimizers}",
              f"- target for float64: matrixprop/PyTorch >= {FLOAT64_TARGET} in float64"]
    lines += [f"- {note}" for note in notes]
    return "\n".join([*lines, "", *tables(results)])


def main(argv: Sequence[str] | None = None) -> int:
    load = environment.load_average()  # before this process adds its own load
    args = parse_args(argv)
    n = epoch_samples(CASES[args.config], args)
    X32, y, data = load_data(args, n)
    _, notes = available_frameworks()
    results = []
    with limited_threads(args.threads, load) as (env, warnings):
        for dtype in args.dtypes:
            print(f"{args.config} {dtype}: {n:,} samples", file=sys.stderr, flush=True)
            X = X32.astype(dtype, copy=False)  # once, shared by every run of this dtype
            timings = measure(args.config, dtype, args.optimizers, X, y, args.repeats, args.seed)
            results.append(summarize(dtype, timings))
            del X  # before the next dtype's copy is made
    settings = {"config": args.config, "optimizers": args.optimizers, "dtypes": args.dtypes,
                "repeats": args.repeats, "threads": args.threads, "quick": args.quick,
                "data": data, "seed": args.seed, "notes": notes}
    print(report(env, warnings, notes, settings, results))
    write_json(args.json, environment=env, settings=settings, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
