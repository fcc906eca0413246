"""Data-parallel training on this machine, and a scaling model for 2 to 64 ranks.

Run as a script, it measures (in about half a minute):

1. all-reduce times of 1, 4 and 16 MB (and of the 16-byte metrics all-reduce) on ``--ranks``
   ranks, in a job it launches with the ``mpiexec`` beside this Python;
2. [784,256,128,10] relu/softmax at batch 1024 on random MNIST-shaped data: ``--ranks`` ranks x 1
   BLAS thread against 1 process x ``--ranks`` threads, with the all-reduce share of a step;
3. the cost of the distributed machinery for one process (per ``fit`` call; none per step);
4. the single-thread step time of each network of `cases.CASES` at two shard sizes;

then prints the predicted step time and efficiency of 2 to 64 ranks for those networks (the
model is described in docs/distributed.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/allreduce.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import matrixprop as mp  # noqa: E402
from benchmarks import environment  # noqa: E402
from benchmarks.cases import CASES, Case, build_network, make_data  # noqa: E402
from matrixprop import distributed  # noqa: E402

MEGABYTES = (1, 4, 16)
RANKS = (2, 4, 8, 16, 32, 64)
STEP_CASE = CASES["relu256_b1024"]
STEP_BATCHES = 6  # timed steps per epoch in the step comparison
# Interconnects "on paper": name -> (latency alpha in seconds, bandwidth beta in bytes/s).
LINKS = {"25 Gb/s Ethernet (TCP)": (25e-6, 2.5e9), "InfiniBand HDR (200 Gb/s)": (2e-6, 23e9)}


@dataclass(frozen=True)
class Link:
    """The alpha-beta model of an all-reduce: ``alpha`` per message, ``beta`` bytes per second."""

    name: str
    alpha: float
    beta: float

    def allreduce(self, ranks: int, nbytes: float) -> float:
        """Seconds to all-reduce ``nbytes`` over ``ranks`` (reduce-scatter then all-gather)."""
        if ranks == 1:
            return 0.0
        return 2 * math.log2(ranks) * self.alpha + 2 * (ranks - 1) / ranks * nbytes / self.beta


class TimedCommunicator(distributed.MPICommunicator):
    """An MPI communicator that adds up the seconds spent in all-reduces, by buffer size."""

    def __init__(self):
        super().__init__()
        self.seconds: dict[int, float] = {}

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        super().allreduce(buffer)
        self.seconds[buffer.size] = self.seconds.get(buffer.size, 0.0) + (
            time.perf_counter() - started)
        return buffer


class FromSecondEpoch(mp.Callback):
    """Clears a :class:`TimedCommunicator`'s times when the second epoch begins."""

    def __init__(self, timed: TimedCommunicator):
        self.timed = timed

    def on_epoch_begin(self, state) -> None:
        if state.epoch == 1:
            self.timed.seconds.clear()


def step_seconds(case: Case, batch: int, steps: int, comm="none", callbacks=()) -> float:
    """Seconds per training step of ``case`` at ``batch`` (the second of two epochs)."""
    X, y = make_data(batch * steps, seed=1)
    net = build_network(case)
    history = mp.fit(net, X, y, loss=case.loss, optimizer=mp.optimizers.SGD(lr=0.01),
                     batch_size=batch, epochs=2, shuffle=False, distributed=comm,
                     callbacks=list(callbacks))
    return history["epoch_seconds"][-1] / steps


def allreduce_seconds(comm: distributed.MPICommunicator, nbytes: int, repeats: int) -> float:
    """Median seconds of an in-place all-reduce of ``nbytes`` of float32."""
    buffer = np.ones(max(1, nbytes // 4), np.float32)
    times = []
    for _ in range(repeats + 2):  # two warm-ups
        comm.comm.Barrier()
        started = time.perf_counter()
        comm.allreduce(buffer)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def worker() -> None:
    """One rank of the measuring job: rank 0 prints the results as JSON."""
    comm = distributed.get_communicator("mpi")  # sets this rank's BLAS threads
    threads = _blas_threads()
    results = {"ranks": comm.size, "threads_per_rank": threads, "allreduce": {}}
    for nbytes in (16, *(mb << 20 for mb in MEGABYTES)):
        results["allreduce"][nbytes] = allreduce_seconds(comm, nbytes, 30 if nbytes < 8 << 20
                                                         else 10)
    timed = TimedCommunicator()
    step = step_seconds(STEP_CASE, STEP_CASE.batch, STEP_BATCHES, timed, [FromSecondEpoch(timed)])
    results["step"] = {"seconds": step,
                       "gradient_allreduce": timed.seconds[max(timed.seconds)] / STEP_BATCHES,
                       "metrics_allreduce": timed.seconds[2] / STEP_BATCHES}
    if comm.rank == 0:
        print(json.dumps(results))


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


def run_job(ranks: int) -> dict:
    """Launch the measuring job on ``ranks`` ranks; its rank 0's results."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = {k: v for k, v in os.environ.items() if k not in distributed.THREAD_VARIABLES}
    result = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, __file__,
                             "--worker"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, env=env, timeout=300)
    if result.returncode:
        raise RuntimeError(f"the MPI job failed:\n{result.stderr}")
    return json.loads(result.stdout)


def single_process_overhead(repeats: int = 2000) -> float:
    """Seconds that the distributed machinery adds to one ``fit`` call in one process:
    resolving ``distributed="auto"`` and the failure guard (nothing is added per step)."""
    guarded = distributed.abort_on_failure(lambda *, distributed="auto": distributed)
    started = time.perf_counter()
    for _ in range(repeats):
        guarded()
    return (time.perf_counter() - started) / repeats


def compute_model(case: Case) -> tuple[float, float]:
    """``(t0, ts)`` of the single-thread step time ``t0 + b ts`` of a shard of ``b`` rows,
    from steps at the full batch and at a sixteenth of it."""
    small = max(1, case.batch // 16)
    steps = max(4, 2048 // case.batch)
    with threadpool_limits(limits=1, user_api="blas"):
        big_t, small_t = (step_seconds(case, b, steps) for b in (case.batch, small))
    ts = max((big_t - small_t) / (case.batch - small), 0.0)
    return max(small_t - small * ts, 0.0), ts


def fit_link(allreduce: dict[int, float], ranks: int) -> Link:
    """The alpha-beta link that fits the all-reduce times measured on ``ranks`` ranks."""
    factor = 2 * (ranks - 1) / ranks
    (b1, t1), (b2, t2) = sorted(allreduce.items())[-2:]
    beta = factor * (b2 - b1) / max(t2 - t1, 1e-12)
    alpha = allreduce[min(allreduce)] / (2 * math.log2(ranks))
    return Link(f"this machine, shared memory ({ranks} ranks)", alpha, beta)


def predictions(case: Case, model: tuple[float, float], link: Link) -> list[dict]:
    """Step time and efficiency of ``case`` on 2 to 64 ranks (fixed global batch)."""
    t0, ts = model
    nbytes = 4 * build_network(case).params.size
    single = t0 + case.batch * ts
    rows = []
    for ranks in RANKS:
        shard = math.ceil(case.batch / ranks)
        compute = t0 + shard * ts
        communicate = link.allreduce(ranks, nbytes) + link.allreduce(ranks, 16)
        step = compute + communicate
        rows.append({"ranks": ranks, "shard": shard, "step": step,
                     "communication_share": communicate / step,
                     "efficiency": single / (ranks * step)})
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=2, help="ranks of the measured job")
    parser.add_argument("--repeats", type=int, default=3,
                        help="paired repetitions of the step comparison (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker()
        return
    load = environment.load_average()
    one_process, jobs = [], []
    for _ in range(args.repeats):  # paired: one process, then the job
        with threadpool_limits(limits=args.ranks, user_api="blas"):
            one_process.append(step_seconds(STEP_CASE, STEP_CASE.batch, STEP_BATCHES))
        jobs.append(run_job(args.ranks))
    job = _median_job(jobs)
    allreduce = {int(k): v for k, v in job["allreduce"].items()}
    links = [fit_link(allreduce, args.ranks)] + [Link(n, a, b) for n, (a, b) in LINKS.items()]
    models = {key: compute_model(case) for key, case in CASES.items() if case.train}
    report = {"environment": environment.describe(None, load), "job": job, "jobs": jobs,
              "one_process_step": one_process, "overhead_per_fit": single_process_overhead(),
              "compute_model": models, "links": [vars(link) for link in links],
              "predictions": {link.name: {key: predictions(CASES[key], model, link)
                                          for key, model in models.items()}
                              for link in links}}
    print("\n".join(_markdown(report, args.ranks)))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def _median_job(jobs: list[dict]) -> dict:
    """The job results with every time replaced by its median over the repetitions."""
    first = jobs[0]
    return {**first,
            "allreduce": {k: statistics.median(j["allreduce"][k] for j in jobs)
                          for k in first["allreduce"]},
            "step": {k: statistics.median(j["step"][k] for j in jobs) for k in first["step"]},
            "step_runs": [j["step"]["seconds"] for j in jobs]}


def _markdown(report: dict, ranks: int) -> list[str]:
    job, lines = report["job"], environment.markdown(report["environment"])
    lines += ["", f"All-reduce on {ranks} ranks, in place, float32 (median):", "",
              "| size | time | bandwidth |", "| --- | --- | --- |"]
    for nbytes, seconds in sorted((int(k), v) for k, v in job["allreduce"].items()):
        if nbytes >= 1 << 20:
            lines.append(f"| {nbytes >> 20} MB | {seconds * 1e3:.3f} ms | "
                         f"{nbytes / seconds / 1e9:.2f} GB/s |")
        else:
            lines.append(f"| {nbytes} B | {seconds * 1e6:.1f} us | (latency) |")
    step = job["step"]
    share = (step["gradient_allreduce"] + step["metrics_allreduce"]) / step["seconds"]
    single = statistics.median(report["one_process_step"])
    lines += ["", f"{STEP_CASE.label} step:", "",
              f"- 1 process x {ranks} BLAS threads: {single * 1e3:.1f} ms "
              f"(runs: {', '.join(f'{t * 1e3:.1f}' for t in report['one_process_step'])})",
              f"- {ranks} ranks x {job['threads_per_rank']} BLAS thread: "
              f"{step['seconds'] * 1e3:.1f} ms "
              f"(runs: {', '.join(f'{t * 1e3:.1f}' for t in job['step_runs'])}), of which "
              "all-reduce "
              f"{step['gradient_allreduce'] * 1e3:.2f} ms (gradient) + "
              f"{step['metrics_allreduce'] * 1e3:.3f} ms (loss and hits): {share:.1%}",
              f"- ratio (1 process / {ranks} ranks): {single / step['seconds']:.2f}",
              f"- distributed machinery in one process: "
              f"{report['overhead_per_fit'] * 1e6:.1f} us per fit call, none per step", ""]
    for name, by_case in report["predictions"].items():
        lines += [f"Predicted step time (ms) and efficiency, fixed global batch, {name}:", "",
                  "| network, batch | 1 rank | " + " | ".join(f"{r}" for r in RANKS) + " |",
                  "| --- " * (len(RANKS) + 2) + "|"]
        for key, rows in by_case.items():
            t0, ts = report["compute_model"][key]
            cells = " | ".join(f"{row['step'] * 1e3:.2f} ({row['efficiency']:.0%})"
                               for row in rows)
            lines.append(f"| {CASES[key].label} | {(t0 + CASES[key].batch * ts) * 1e3:.2f} | "
                         f"{cells} |")
        lines.append("")
    return lines


if __name__ == "__main__":
    main()
