"""What the fuzz tests share: a hard time limit per example, the peak memory a call allocates,
mutations of valid files, and how many examples to run.

``MATRIXPROP_FUZZ_EXAMPLES`` sets the examples per test (default 150: a few seconds each); the
long run in ``fuzz/README.md`` raises it.
"""

from __future__ import annotations

import os
import signal
import time
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

EXAMPLES = int(os.environ.get("MATRIXPROP_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT_S = 5.0  # a hard limit per example: only a hang takes this long
MIB = 2**20


class Hang(Exception):
    """An example ran past the time limit (an infinite loop, or a huge allocation)."""


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in the block after ``seconds`` of wall time."""
    def expire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """What a call returned or raised, its peak traced memory and its duration."""

    value: object
    error: BaseException | None
    peak: int
    seconds: float


def observe(function: Callable, *args, limit_s: float = LIMIT_S) -> Outcome:
    """Call ``function(*args)`` under a time limit, tracing its allocations (NumPy reports its
    array buffers to tracemalloc, so they count too). :class:`Hang` is raised, not returned."""
    value, error = None, None
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with time_limit(limit_s):
            value = function(*args)
    except Hang:
        raise
    except Exception as exc:  # the caller judges which errors are allowed
        error = exc
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return Outcome(value, error, peak, seconds)


def assert_only(outcome: Outcome, *allowed: type[BaseException]) -> None:
    """The call either returned or raised one of the ``allowed`` types (which hypothesis'
    statistics count: ``--hypothesis-show-statistics``)."""
    if currently_in_test_context():
        event("accepted" if outcome.error is None else f"refused ({type(outcome.error).__name__})")
    if outcome.error is not None and not isinstance(outcome.error, allowed):
        raise AssertionError(f"{type(outcome.error).__name__} escaped: {outcome.error}"
                             ) from outcome.error


def mutations(size: int) -> st.SearchStrategy:
    """Edits of a file of ``size`` bytes: (offset, byte) overwrites, then a cut or an insertion."""
    overwrite = st.tuples(st.integers(0, max(size - 1, 0)), st.integers(0, 255))
    return st.tuples(st.lists(overwrite, max_size=8),
                     st.one_of(st.none(), st.integers(0, size)),
                     st.binary(max_size=16))


def mutate(data: bytes, edit) -> bytes:
    """Apply an edit drawn from :func:`mutations`."""
    overwrites, cut, inserted = edit
    buffer = bytearray(data)
    for offset, byte in overwrites:
        if offset < len(buffer):
            buffer[offset] = byte
    if cut is not None:
        buffer = buffer[:cut] + inserted
    return bytes(buffer)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False,
                                                                        allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
