"""Compiled inference split over threads: the ranges, BLAS held to one thread and given back,
one split at a time, and the same outputs as the NumPy engine; the shares of a training split
(its kernel is tested against the NumPy engine in test_accelerated)."""

import contextlib
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import matrixprop as mp
from matrixprop.accelerated import _split


class FakeBlas:
    """A stand-in for threadpoolctl's controller: ``threads`` BLAS threads; records the limits
    asked for, and applies them when ``obeys`` (the real BLAS is never held: these tests check
    the splitting, and may run several multithreaded BLAS calls at once)."""

    def __init__(self, threads, obeys=True):
        self.lib = type("Lib", (), {"num_threads": threads})()
        self.lib_controllers = [self.lib]
        self.obeys, self.limits = obeys, []

    @contextlib.contextmanager
    def limit(self, limits):
        self.limits.append(limits)
        before = self.lib.num_threads
        if self.obeys:
            self.lib.num_threads = limits
        try:
            yield
        finally:
            self.lib.num_threads = before


@pytest.fixture
def fake_blas(monkeypatch):
    def install(threads, obeys=True):
        blas = FakeBlas(threads, obeys)
        monkeypatch.setattr(_split, "_blas_libraries", lambda: blas)
        return blas
    return install


def recorded_ranges(together=1):
    """``work`` recording its ranges and threads; ``together`` calls must run at once (each
    waits for the others)."""
    ranges, threads = [], set()
    everyone = threading.Barrier(together, timeout=10)

    def work(start, stop):
        ranges.append((start, stop))
        threads.add(threading.get_ident())
        everyone.wait()
    return work, ranges, threads


@pytest.mark.parametrize("n, parts, expected", [
    (10, 2, [(0, 5), (5, 10)]),
    (10, 3, [(0, 3), (3, 6), (6, 10)]),
    (2, 4, [(0, 1), (1, 2)]),
    (7, 1, [(0, 7)]),
])
def test_split_rows_cuts_near_equal_ranges(n, parts, expected):
    assert _split.split_rows(n, parts) == expected


def test_each_blas_thread_gets_a_range_on_its_own_thread(fake_blas):
    blas = fake_blas(3)
    work, ranges, threads = recorded_ranges(together=3)
    _split.run_split(3000, work)
    assert sorted(ranges) == [(0, 1000), (1000, 2000), (2000, 3000)]
    assert len(threads) == 3
    assert blas.limits == [1]


def test_blas_threads_are_shared_out_among_fewer_ranges(fake_blas):
    """16 BLAS threads and rows for 4 ranges: 4 threads of BLAS each."""
    blas = fake_blas(16)
    seen = []
    _split.run_split(4 * _split.MIN_ROWS_PER_THREAD, lambda *_: seen.append(blas.lib.num_threads))
    assert blas.limits == [4]
    assert seen == [4] * 4
    assert blas.lib.num_threads == 16


def test_a_limit_that_does_not_take_runs_in_one_piece(fake_blas):
    """threadpoolctl lets only one thread change some OpenBLAS builds: then no split."""
    blas = fake_blas(2, obeys=False)
    work, ranges, _ = recorded_ranges()
    _split.run_split(4000, work)
    assert ranges == [(0, 4000)]
    assert blas.limits == [1]
    assert not _split._one_at_a_time.locked()


def test_a_limit_that_does_not_take_gives_blas_and_the_lock_back_before_the_work(fake_blas):
    blas = fake_blas(4, obeys=False)
    with _split.shared_blas(1000, 64) as parts:
        assert parts == 1
        assert not _split._one_at_a_time.locked()
        assert blas.limits == [1] and blas.lib.num_threads == 4


@pytest.mark.parametrize("most, one_thread_each, parts, limits", [
    (None, False, 4, [1]),  # one part per thread (1000 rows hold 15 of 64)
    (2, False, 2, [2]),  # at most 2 parts: BLAS's 4 threads shared out, 2 each
    (2, True, 1, []),  # fewer parts than threads and one thread each asked: no split
    (None, True, 4, [1]),
])
def test_shared_blas_parts(fake_blas, most, one_thread_each, parts, limits):
    blas = fake_blas(4)
    with _split.shared_blas(1000, 64, most, one_thread_each=one_thread_each) as got:
        assert got == parts
        assert blas.lib.num_threads == (limits[0] if limits else 4)
    assert blas.limits == limits
    assert blas.lib.num_threads == 4 and not _split._one_at_a_time.locked()


FORK_DURING_A_SPLIT = """
import os
from matrixprop.accelerated import _split
_split._one_at_a_time.acquire()  # a split running in another thread of the parent
pid = os.fork()
if pid == 0:
    os._exit(0 if _split._one_at_a_time.acquire(blocking=False) else 3)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_starts_with_the_split_lock_free():
    done = subprocess.run([sys.executable, "-c", FORK_DURING_A_SPLIT], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("threads, rows", [(1, 10_000), (4, 2 * _split.MIN_ROWS_PER_THREAD - 1)])
def test_one_blas_thread_or_few_rows_run_in_one_piece(fake_blas, threads, rows):
    blas = fake_blas(threads)
    work, ranges, _ = recorded_ranges()
    _split.run_split(rows, work)
    assert ranges == [(0, rows)]
    assert blas.limits == []


def test_a_call_during_another_split_runs_in_one_piece(fake_blas):
    blas = fake_blas(2)
    work, ranges, _ = recorded_ranges()
    with _split._one_at_a_time:
        _split.run_split(4000, work)
    assert ranges == [(0, 4000)]
    assert blas.limits == []
    _split.run_split(4000, work)  # the lock is free again
    assert sorted(ranges[1:]) == [(0, 2000), (2000, 4000)]


def test_a_failing_range_raises_and_frees_the_lock(fake_blas):
    fake_blas(2)

    def work(start, stop):
        if start > 0:
            raise RuntimeError("range failed")

    with pytest.raises(RuntimeError, match="range failed"):
        _split.run_split(4000, work)
    assert not _split._one_at_a_time.locked()


def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_runs_one_thread_during_the_split_and_gets_its_threads_back():
    mp.MLP([4, 3], "relu", seed=0).predict(np.zeros((1, 4)), accelerate=True)  # load the kernels
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        seen = []
        _split.run_split(4 * _split.MIN_ROWS_PER_THREAD, lambda *_: seen.append(blas_threads()))
        assert blas_threads() == before
    assert set(before) == {2}
    assert seen == [[1] * len(before)] * 2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_split_prediction_matches_the_numpy_engine(fake_blas, dtype):
    """Three ranges of rows on three threads, each in chunks with a partial last one."""
    fake_blas(3)
    rows = np.random.default_rng(2).normal(size=(3001, 6)).astype(dtype)
    net = mp.MLP([6, 9, 7, 3], "tanh", "softmax", seed=0, dtype=dtype)
    expected = net.predict(rows, accelerate=False)
    got = net.predict(rows, batch_size=400, accelerate=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12 if dtype == "float64" else 2e-6,
                               atol=1e-14 if dtype == "float64" else 1e-6)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 1000, 2999])  # each of the three ranges
def test_split_prediction_finds_a_non_finite_input_in_any_range(fake_blas, value, row):
    """X's values are checked on the way (by its first products), with the NumPy engine's
    message; with relu, -inf would vanish from the outputs."""
    fake_blas(3)
    rows = np.random.default_rng(2).normal(size=(3000, 6)).astype(np.float32)
    rows[row, 4] = value
    net = mp.MLP([6, 9, 3], "relu", "softmax", seed=0, dtype="float32")
    for accelerate in (True, False):
        with pytest.raises(ValueError, match=rf"X contains NaN or infinite values \(first at "
                                             rf"index \({row}, 4\)\)"):
            net.predict(rows, batch_size=400, accelerate=accelerate)


def test_compiled_prediction_makes_no_pass_of_its_own_over_finite_inputs(monkeypatch):
    from matrixprop import _validation, accelerated

    checked = []
    monkeypatch.setattr(_validation, "check_finite", lambda a, name: checked.append(name))
    monkeypatch.setattr(accelerated, "check_finite", lambda a, name: checked.append(name))
    net = mp.MLP([6, 9, 3], "relu", "softmax", seed=0)
    net.predict(np.ones((3000, 6)), accelerate=True)
    assert checked == []
    net.predict(np.ones((3000, 6)), accelerate=False)
    assert checked == ["X"]


def test_overflowing_products_and_non_finite_weights_are_not_input_errors():
    """Finite inputs whose products overflow, or weights gone NaN, give what the NumPy engine
    gives, without an error."""
    net = mp.MLP([4, 5, 3], "relu", "identity", seed=0, dtype="float32")
    huge = np.full((3000, 4), 3e38, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = net.predict(huge, accelerate=False)
        assert not np.isfinite(expected).all()
        np.testing.assert_array_equal(net.predict(huge, accelerate=True), expected)
        net.layers[0].W[0, 0] = np.nan
        rows = np.ones((3000, 4), dtype=np.float32)
        np.testing.assert_array_equal(net.predict(rows, accelerate=True),
                                      net.predict(rows, accelerate=False))


def test_concurrent_predictions_are_right_and_leave_blas_as_it_was():
    """Four predictions at once with the real BLAS: one may split while the others run in one
    piece; every output is right and BLAS ends with the threads it had."""
    net = mp.MLP([6, 32, 3], "relu", "softmax", seed=0, dtype="float64")
    rows = [np.random.default_rng(seed).normal(size=(4000, 6)) for seed in range(4)]
    expected = [net.predict(r, accelerate=False) for r in rows]
    before = blas_threads()
    got = [None] * 4

    def predict(i):
        got[i] = net.predict(rows[i], accelerate=True)

    workers = [threading.Thread(target=predict, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
    assert blas_threads() == before
