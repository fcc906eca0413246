"""Compiled inference and training steps split over the cores, each core with its own share.

Training steps split in compiled code (numba's parallel loops, see ``_kernels``); this module
decides their shares and holds BLAS meanwhile (:func:`shared_blas`), and splits inference.

At inference batches BLAS's threads spend a noticeable part of each product synchronizing, and
the bias-and-activation passes between products run on one core. Handing each BLAS thread a
near-equal range of the rows instead (one Python thread each, in compiled code that releases
the GIL), with BLAS held to a share of its threads during the call, keeps every core busy on
its own rows (measured in benchmarks/README.md).

BLAS's thread count is a setting of the whole process: while a split runs, BLAS work in other
threads (a training, another prediction) runs with the reduced count too. One split runs at a
time; a call that finds another running computes its rows in one piece, as does a process
whose BLAS has one thread (``--threads 1``, ``threadpool_limits``), has no ``threadpoolctl``,
or does not take the limit (threadpoolctl lets only one thread change some OpenBLAS builds).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from ._available import load_blas

__all__ = ["run_split", "shared_blas", "split_rows"]

MIN_ROWS_PER_THREAD = 512  # below, starting a thread costs more than its share saves
_one_at_a_time = threading.Lock()


@functools.cache
def _blas_libraries():
    """threadpoolctl's handle on the BLAS libraries loaded, the kernels' among them (loaded
    first), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    load_blas()
    return ThreadpoolController().select(user_api="blas")


def _threads(blas) -> int:
    """The fewest threads any of the BLAS libraries runs (1 without threadpoolctl)."""
    return min((lib.num_threads for lib in blas.lib_controllers), default=1) if blas else 1


def split_rows(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into ``parts`` ranges of near-equal length (fewer when ``n < parts``)."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(start, stop) for start, stop in itertools.pairwise(bounds) if stop > start]


@contextlib.contextmanager
def shared_blas(n: int, min_rows: int, most: int | None = None, *,
                one_thread_each: bool = False) -> Iterator[int]:
    """How many parts to cut ``n`` rows into: one per BLAS thread (at most ``most``), each of
    at least ``min_rows`` rows, with BLAS's threads shared out among the parts while the
    context lasts; with ``one_thread_each``, only as many parts as BLAS has threads. Yields 1,
    with BLAS untouched, when there is nothing to split or BLAS cannot be held (see the
    module's docstring)."""
    if n < 2 * min_rows:  # too few rows to split: BLAS is not even asked
        yield 1
        return
    blas = _blas_libraries()
    threads = _threads(blas)
    parts = min(threads, n // min_rows, most or threads)
    if parts < 2 or (one_thread_each and parts < threads):
        yield 1
        return
    with contextlib.ExitStack() as held:
        if not _one_at_a_time.acquire(blocking=False):
            yield 1
            return
        held.callback(_one_at_a_time.release)
        share = max(1, threads // parts)
        held.enter_context(blas.limit(limits=share))
        if any(lib.num_threads > share for lib in blas.lib_controllers):  # it did not take
            held.close()  # BLAS's threads and the lock given back at once
            yield 1
            return
        yield parts


def _new_lock_after_fork() -> None:
    """A forked child starts with the lock free: a split running in the parent's other threads
    at the fork never ends in the child."""
    global _one_at_a_time
    _one_at_a_time = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def run_split(n: int, work: Callable[[int, int], None]) -> None:
    """``work(start, stop)`` over the rows ``[0, n)``: one range per BLAS thread (at least
    :data:`MIN_ROWS_PER_THREAD` rows each), each on its own thread with BLAS's threads shared
    out among them meanwhile; or ``work(0, n)`` when there is nothing to split or BLAS cannot
    be held."""
    with shared_blas(n, MIN_ROWS_PER_THREAD) as parts:
        ranges = split_rows(n, parts)
        if len(ranges) < 2:
            work(0, n)
            return
        with ThreadPoolExecutor(len(ranges) - 1) as pool:
            others = [pool.submit(work, start, stop) for start, stop in ranges[1:]]
            work(*ranges[0])
            for future in others:
                future.result()
