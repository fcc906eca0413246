"""How fast the matrix products of one step can run here: the ceiling under every contender.

For each row of the table in ``train_speed.py`` this times every product of a step (the GEMM
bound's, see :mod:`benchmarks.gemm`) alone, repeated on the same arrays, with one BLAS thread and
with all of them, and adds up:

- **all threads, in turn**: the step as the GEMM bound runs it, each product on every core;
- **one thread, every core**: each core running its own share of the step's products at the
  speed one thread reaches alone. No split of the step over the cores can do better with this
  BLAS, since every product already runs at its best single-core speed and nothing else runs.

Per product it prints the GFLOP/s reached, to compare with the cores' floating-point peak. Run
it with OpenBLAS's kernel unpinned::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/products.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import environment  # noqa: E402
from benchmarks.cases import CASES, Case  # noqa: E402
from benchmarks.gemm import GemmPlan  # noqa: E402


def product_seconds(a: np.ndarray, b: np.ndarray, out: np.ndarray, repeats: int) -> float:
    """Median seconds of ``matmul(a, b, out=out)`` over ``repeats`` calls, after two untimed."""
    for _ in range(2):
        np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ceilings(case: Case, cores: int, repeats: int) -> tuple[list[dict], dict]:
    """Per product of ``case``'s step: its shapes, flops and seconds with 1 and ``cores`` BLAS
    threads; and the step's samples/s both ways (see the module's docstring)."""
    plan = GemmPlan.for_network(case.sizes, case.batch, train=case.train, dtype=case.dtype)
    rows = [{"a": a.shape, "b": b.shape, "flops": 2 * a.shape[0] * a.shape[1] * b.shape[1]}
            for a, b, _ in plan.products]
    for threads in (1, cores):
        with threadpool_limits(threads, user_api="blas"):
            for row, (a, b, out) in zip(rows, plan.products, strict=True):
                row[threads] = product_seconds(a, b, out, repeats)
    one = sum(row[1] for row in rows)
    steps = {"all threads, in turn": case.batch / sum(row[cores] for row in rows),
             "one thread, every core": cores * case.batch / one}
    return rows, steps


def report(case: Case, rows: list[dict], steps: dict, cores: int) -> list[str]:
    """Markdown lines: one per product, then the step's two ceilings."""
    lines = [f"## {case.label}", "",
             f"| product | 1 thread µs | GFLOP/s | {cores} threads µs | GFLOP/s |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [f"{row['a']} x {row['b']}"]
        for threads in (1, cores):
            cells += [f"{row[threads] * 1e6:,.0f}", f"{row['flops'] / row[threads] / 1e9:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {name}: {rate / 1e3:,.1f}k samples/s" for name, rate in steps.items()]
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CASES), default=list(CASES),
                        help="the rows of train_speed.py to measure (default: all)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per product")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="the BLAS threads, and cores, of the second measure")
    args = parser.parse_args(argv)
    env = environment.describe(None, environment.load_average())
    for warning in (environment.pinned_warning(env), environment.busy_warning(env)):
        if warning:
            print(f"**{warning}**\n")
    print("\n".join(environment.markdown(env)) + "\n")
    for key in args.configs:
        case = CASES[key]
        rows, steps = ceilings(case, args.threads, args.repeats)
        print("\n".join(report(case, rows, steps, args.threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
