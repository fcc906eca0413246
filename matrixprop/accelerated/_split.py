"""Compiled inference split over the cores, each core with its own rows.

At inference batches BLAS's threads spend a noticeable part of each product synchronizing, and
the bias-and-activation passes between products run on one core. Handing each core a share of
whole chunks instead (one thread each, in compiled code that releases the GIL), with BLAS held
to one thread during the call, keeps every core busy on its own rows: on 2 cores, batch 1024,
353k against 375k samples/s (see benchmarks/README.md).

BLAS's thread count is a setting of the whole process, so one split call runs at a time; a
call that finds another running computes its rows in one piece, as does a process whose BLAS
is limited to one thread (``--threads 1``, ``threadpool_limits``) or has no ``threadpoolctl``.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["run_split", "split_rows"]

MIN_ROWS_PER_THREAD = 512  # below, starting a thread costs more than its share saves
_one_at_a_time = threading.Lock()


@functools.cache
def _blas_libraries():
    """threadpoolctl's handle on the BLAS libraries loaded (the kernels' among them), or None
    without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


def split_rows(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into ``parts`` ranges of near-equal length (fewer when ``n < parts``)."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(start, stop) for start, stop in itertools.pairwise(bounds) if stop > start]


def run_split(n: int, work: Callable[[int, int], None]) -> None:
    """``work(start, stop)`` over the rows ``[0, n)``: one range per BLAS thread, each on its
    own thread with BLAS held to one thread meanwhile; or ``work(0, n)`` when there is nothing
    to split or no way to hold BLAS."""
    blas = _blas_libraries()
    threads = min((lib.num_threads for lib in blas.lib_controllers), default=1) if blas else 1
    ranges = split_rows(n, max(1, min(threads, n // MIN_ROWS_PER_THREAD)))
    if len(ranges) < 2 or not _one_at_a_time.acquire(blocking=False):
        work(0, n)
        return
    try:
        with blas.limit(limits=1), ThreadPoolExecutor(len(ranges) - 1) as pool:
            others = [pool.submit(work, start, stop) for start, stop in ranges[1:]]
            work(*ranges[0])
            for future in others:
                future.result()
    finally:
        _one_at_a_time.release()
