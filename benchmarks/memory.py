"""Peak memory of a training run beside what the run must hold, and where the rest comes from.

For each configuration, path (the compiled epochs, the NumPy engine) and optimizer, the script
creates MNIST-shaped data (default 60,000 x 784 float32 and int64 labels) and the network under
``tracemalloc`` (NumPy reports its array buffers to it), then runs ``mp.fit(..., epochs=1)``.
It compares the peak of the traced memory with the **model** of what training needs, computed
from the shapes::

    data (X and the labels y as passed) + parameters + gradients + optimizer state
    + one batch's activations (the batch's input rows and one output array per layer)

and reports the ratio (issue 5's target: at most 1.2). To explain the difference it prints the
line of matrixprop during which the peak was reached, with the rise it caused, and the
allocations made inside ``fit`` that are still held at the end of the epoch, by source line.
Speed is not measured here (tracing slows Python down)::

    python benchmarks/memory.py --json memory.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import linecache
import sys
import tracemalloc
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matrixprop as mp  # noqa: E402
from benchmarks.cases import (  # noqa: E402
    CASES,
    DTYPES,
    OPTIMIZERS,
    Case,
    build_network,
    make_data,
    make_optimizer,
)
from benchmarks.train_speed import write_json  # noqa: E402
from matrixprop import accelerated  # noqa: E402

STATE_BUFFERS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}  # per parameter
PATHS = {"compiled": "auto", "NumPy": False}  # path -> fit's accelerate argument
DEFAULT_CONFIGS = ("relu256_b128", "relu1024_b256")
TRAIN_KEYS = [key for key, case in CASES.items() if case.train]
SAMPLES, QUICK_SAMPLES = 60_000, 6_000
TARGET = 1.2
TOP_LINES = 8
SMALL = 10_000  # bytes: smaller entries are summed up with the rest
FRAMES = 30  # traceback depth kept by tracemalloc, enough to reach matrixprop's line
MiB = 2**20
PACKAGE = str(Path(mp.__file__).resolve().parent)
ROOT = str(Path(PACKAGE).parent)


def model_bytes(case: Case, n: int) -> dict[str, int]:
    """What a training run of ``case`` on ``n`` samples must hold, in bytes, by component."""
    item = np.dtype(case.dtype).itemsize
    params = sum((n_in + 1) * n_out for n_in, n_out in pairwise(case.sizes))  # W and b
    return {
        "data X": n * case.sizes[0] * item,
        "labels y": n * np.dtype(np.int64).itemsize,
        "parameters": params * item,
        "gradients": params * item,
        "optimizer state": STATE_BUFFERS[case.optimizer] * params * item,
        "one batch's activations": case.batch * sum(case.sizes) * item,
    }


class PeakAttribution:
    """How the traced memory's peak was built up, line by line of matrixprop.

    As a trace function (:func:`sys.settrace`) it reads tracemalloc's peak at every line event
    of matrixprop's own code. When the peak has risen since the previous event, it rose while
    the previous line ran (with the NumPy or other code that line called; after a function's
    return, the line of matrixprop that called it), and that line is credited with the rise.
    The credits add up to ``peak - start``: every byte of the peak above the memory traced when
    it started, by the line that first needed it, buffers kept for the whole run and
    short-lived temporaries alike.

    Attributes
    ----------
    start, peak : int
        The traced memory when it started, and the highest seen since, in bytes.
    rises : dict
        ``(filename, line number) -> bytes`` by which that line raised the peak.
    """

    def __init__(self, package: str = PACKAGE):
        self.package = package
        self.start = self.peak = tracemalloc.get_traced_memory()[0]
        self.rises: dict[tuple[str, int], int] = {}
        self._last = ("(before matrixprop's first line)", 0)

    def __enter__(self) -> PeakAttribution:
        self._previous = sys.gettrace()
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc) -> None:
        sys.settrace(self._previous)
        self._line(None, "exit", None)  # credit a rise after matrixprop's last line event

    def _call(self, frame, event, arg):
        return self._line if frame.f_code.co_filename.startswith(self.package) else None

    def _line(self, frame, event, arg):
        peak = tracemalloc.get_traced_memory()[1]
        if peak > self.peak:
            self.rises[self._last] = self.rises.get(self._last, 0) + peak - self.peak
            self.peak = peak
        if event == "return":  # what follows runs in the caller: credit its line
            frame = frame.f_back
            while frame is not None and not frame.f_code.co_filename.startswith(self.package):
                frame = frame.f_back
        if frame is not None:
            self._last = (frame.f_code.co_filename, frame.f_lineno)
        return self._line


class SetupPeak(mp.callbacks.Callback):
    """Reads the peak of fit's set-up (input checks, encodings, buffers), then resets it."""

    peak = 0

    def on_train_begin(self, state) -> None:
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()


def by_line(snapshot: tracemalloc.Snapshot) -> dict[tuple[str, int], int]:
    """Bytes held per source line: the innermost line of matrixprop in each block's traceback
    (else the innermost line), tracemalloc's own blocks left out."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    held: dict[tuple[str, int], int] = {}
    for stat in snapshot.statistics("traceback"):
        frames = list(stat.traceback)  # most recent call last
        frame = next((f for f in reversed(frames) if f.filename.startswith(PACKAGE)), frames[-1])
        key = (frame.filename, frame.lineno)
        held[key] = held.get(key, 0) + stat.size
    return held


def measure(case: Case, n: int, path: str, seed: int = 0) -> dict:
    """One traced ``mp.fit(..., epochs=1)`` of ``case`` on ``n`` fresh samples along ``path``."""
    fit = dict(loss=case.loss, batch_size=case.batch, epochs=1, seed=seed,
               accelerate=PATHS[path])
    X, y = make_data(2 * case.batch, seed)  # compile (or load) the kernels outside the trace
    mp.fit(build_network(case, seed), X.astype(case.dtype), y, optimizer=make_optimizer(case),
           **fit)
    del X, y
    gc.collect()
    tracemalloc.start(FRAMES)
    try:
        X, y = make_data(n, seed)
        X = X.astype(case.dtype, copy=False)
        net, optimizer = build_network(case, seed), make_optimizer(case)
        before = by_line(tracemalloc.take_snapshot())
        tracemalloc.reset_peak()
        setup = SetupPeak()
        with PeakAttribution() as attribution:
            mp.fit(net, X, y, optimizer=optimizer, callbacks=[setup], **fit)
        epoch_peak = tracemalloc.get_traced_memory()[1]
        returned = tracemalloc.get_traced_memory()[0]
        gc.collect()  # what only the cycle collector frees is not kept
        collected = returned - tracemalloc.get_traced_memory()[0]
        after = by_line(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    model = model_bytes(case, n)
    kept = {line: size - before.get(line, 0) for line, size in after.items()
            if size > before.get(line, 0)}
    return {
        "key": case.key, "label": case.label, "path": path, "optimizer": case.optimizer,
        "dtype": case.dtype, "samples": n, "model": model, "model_total": sum(model.values()),
        "before_fit": attribution.start, "peak": attribution.peak, "setup_peak": setup.peak,
        "epoch_peak": epoch_peak, "ratio": attribution.peak / sum(model.values()),
        "rises": _top(attribution.rises), "kept": _top(kept), "cycle_garbage": collected,
    }


def _top(sizes: dict[tuple[str, int], int]) -> list[dict]:
    """The largest entries of ``line -> bytes`` (at most :data:`TOP_LINES`, each at least
    :data:`SMALL` bytes), then the rest summed up as one entry."""
    ranked = sorted(sizes.items(), key=lambda item: -item[1])
    shown = [(line, size) for line, size in ranked[:TOP_LINES] if size >= SMALL]
    top = [{"line": _where(line), "bytes": size} for line, size in shown]
    rest = ranked[len(shown):]
    return top + ([{"line": f"{len(rest)} other lines", "bytes": sum(s for _, s in rest)}]
                  if rest else [])


def _where(line: tuple[str, int]) -> str:
    """``path:line  source`` with the path relative to the repository."""
    filename, number = line
    shown = filename[len(ROOT) + 1:] if filename.startswith(ROOT) else Path(filename).name
    return f"{shown}:{number}  {linecache.getline(filename, number).strip()}"


def _mib(size: float) -> str:
    return f"{size / MiB:,.2f}"


def report(results: list[dict]) -> str:
    """A Markdown table of the ratios, then each run's breakdown."""
    lines = ["# matrixprop peak traced memory of one training epoch", "",
             f"Model = data + parameters + gradients + optimizer state + one batch's "
             f"activations; target: peak/model <= {TARGET}.", "",
             "| network, batch | path | samples | model MiB | peak MiB | peak/model | "
             "peak - model MiB |", "|" + " --- |" * 7]
    for r in results:
        lines.append(f"| {r['label']} | {r['path']} | {r['samples']:,} | "
                     f"{_mib(r['model_total'])} | {_mib(r['peak'])} | {r['ratio']:.3f} | "
                     f"{_mib(r['peak'] - r['model_total'])} |")
    for r in results:
        parts = ", ".join(f"{name} {_mib(size)}" for name, size in r["model"].items())
        lines += ["", f"## {r['label']}, {r['path']} path", "",
                  f"- model {_mib(r['model_total'])} MiB: {parts}",
                  f"- traced when fit was called (data, labels, network, optimizer object): "
                  f"{_mib(r['before_fit'])} MiB",
                  f"- peak {_mib(r['peak'])} MiB (set-up {_mib(r['setup_peak'])}, epoch "
                  f"{_mib(r['epoch_peak'])}); the {_mib(r['peak'] - r['before_fit'])} MiB "
                  f"above the memory traced at the call, by the line that raised the peak:"]
        lines += [f"  - {_mib(h['bytes'])}  `{h['line']}`" for h in r["rises"]]
        lines += [f"- freed only by the garbage collector's cycle detection after fit "
                  f"returned: {_mib(r['cycle_garbage'])} MiB",
                  "- allocated inside fit and still held after it returned (and after a "
                  "garbage collection), MiB:"]
        lines += [f"  - {_mib(h['bytes'])}  `{h['line']}`" for h in r["kept"]]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=TRAIN_KEYS, default=list(DEFAULT_CONFIGS),
                        metavar="KEY", help=f"rows (default {' '.join(DEFAULT_CONFIGS)})")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS),
                        help="fit's paths (default both)")
    parser.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=["sgd"],
                        help="optimizers (default sgd)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--samples", type=int, default=None,
                        help=f"training samples (default {SAMPLES:,}; {QUICK_SAMPLES:,} quick)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples is None:
        args.samples = QUICK_SAMPLES if args.quick else SAMPLES
    if args.samples < 1:
        parser.error(f"--samples must be >= 1, got {args.samples}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = [p for p in args.paths if PATHS[p] is False or accelerated.available()]
    notes = [] if paths == args.paths else ["compiled path skipped: numba is not installed"]
    results = []
    for key in args.configs:
        for optimizer in args.optimizers:
            case = dataclasses.replace(CASES[key], optimizer=optimizer, dtype=args.dtype)
            for path in paths:
                print(f"{case.label}, {path}", file=sys.stderr, flush=True)
                results.append(measure(case, args.samples, path, args.seed))
    print("\n".join([*(f"- {note}" for note in notes), report(results)]))
    write_json(args.json, settings=vars(args), notes=notes, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
