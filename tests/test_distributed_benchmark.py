"""The scaling model of benchmarks/allreduce.py: the alpha-beta all-reduce, fitting it to
measured times, and the predicted step time and efficiency."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import allreduce  # noqa: E402
from benchmarks.cases import CASES  # noqa: E402


def test_the_allreduce_model_is_latency_plus_twice_the_bytes_over_the_bandwidth():
    link = allreduce.Link("test", alpha=1e-6, beta=1e9)
    assert link.allreduce(1, 1e6) == 0.0
    assert link.allreduce(2, 1e6) == pytest.approx(2e-6 + 1e-3)
    assert link.allreduce(64, 1e6) == pytest.approx(12e-6 + 2 * 63 / 64 * 1e-3)


@pytest.mark.parametrize("ranks", [2, 4])
def test_fitting_recovers_the_link_that_produced_the_times(ranks):
    truth = allreduce.Link("truth", alpha=3e-6, beta=5e9)
    times = {nbytes: truth.allreduce(ranks, nbytes) for nbytes in (16, 4 << 20, 16 << 20)}
    fitted = allreduce.fit_link(times, ranks)
    assert fitted.beta == pytest.approx(truth.beta, rel=1e-6)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=1e-2)  # 16 bytes add a little


def test_predictions_split_the_batch_and_add_the_allreduces():
    case = CASES["relu256_b1024"]
    t0, ts = 1e-4, 1e-5
    link = allreduce.Link("test", alpha=2e-6, beta=4e9)
    rows = allreduce.predictions(case, (t0, ts), link)
    nbytes = 4 * allreduce.build_network(case).params.size
    single = t0 + case.batch * ts
    for row in rows:
        shard = math.ceil(case.batch / row["ranks"])
        communicate = link.allreduce(row["ranks"], nbytes) + link.allreduce(row["ranks"], 16)
        assert row["shard"] == shard
        assert row["step"] == pytest.approx(t0 + shard * ts + communicate)
        assert row["efficiency"] == pytest.approx(single / (row["ranks"] * row["step"]))
    assert [row["ranks"] for row in rows] == list(allreduce.RANKS)


def test_with_free_communication_and_no_fixed_cost_scaling_is_perfect():
    free = allreduce.Link("free", alpha=0.0, beta=math.inf)
    rows = allreduce.predictions(CASES["relu256_b1024"], (0.0, 1e-5), free)
    assert all(row["efficiency"] == pytest.approx(1.0) for row in rows)
