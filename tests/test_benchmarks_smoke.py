"""Smoke tests of benchmarks/train_speed.py's pieces: the GEMM bound, matrixprop's contenders,
the IDX reader and the summary, on a few batches (no PyTorch, scikit-learn or JAX needed)."""

from __future__ import annotations

import gzip
import math
import struct
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import contenders  # noqa: E402
from benchmarks.cases import CASES, make_data, read_mnist  # noqa: E402
from benchmarks.train_speed import summarize, table  # noqa: E402

TRAIN_CASES = [key for key, case in CASES.items() if case.train]
STEPS = 2


def _epoch(case, steps=STEPS):
    return make_data(case.epoch_samples(steps * case.batch), seed=1)


def _expected_products(sizes, B, train):
    """(shape of a, shape of b) of every product of one step, as the GEMM bound must run them."""
    layers = list(pairwise(sizes))
    shapes = [((B, n_in), (n_in, n_out)) for n_in, n_out in layers]  # X W^T
    if train:
        shapes += [((n_out, B), (B, n_in)) for n_in, n_out in layers]  # D^T X
        shapes += [((B, n_out), (n_out, n_in)) for n_in, n_out in layers[1:]]  # D W
    return sorted(shapes)


def _assert_rate(timing, samples):
    assert timing.samples == samples
    assert math.isfinite(timing.samples_per_second) and timing.samples_per_second > 0


@pytest.mark.parametrize("key", list(CASES))
def test_gemm_bound_runs_exactly_the_products_of_the_steps(key, monkeypatch):
    case = CASES[key]
    X, y = _epoch(case)
    run = contenders.gemm_bound(case, X, y)
    calls = []
    matmul = np.matmul

    def recording_matmul(a, b, out):
        calls.append((a.shape, b.shape))
        assert out.shape == (a.shape[0], b.shape[1])
        return matmul(a, b, out=out)

    monkeypatch.setattr(np, "matmul", recording_matmul)
    timing = run()
    _assert_rate(timing, len(X))
    B, sizes = case.batch, case.sizes
    assert sorted(calls) == sorted(_expected_products(sizes, B, case.train) * STEPS)
    per_step = 2 * B * sum(n_in * n_out for n_in, n_out in pairwise(sizes))
    if case.train:  # forward, D^T X and D W for every layer, less the first layer's D W
        per_step = 3 * per_step - 2 * B * sizes[0] * sizes[1]
    assert timing.flops == STEPS * per_step
    assert timing.flops == sum(2 * a[0] * a[1] * b[1] for a, b in calls)
    assert timing.gflops > 0


@pytest.mark.parametrize("key", TRAIN_CASES)
def test_matrixprop_train_reports_a_positive_rate_and_trains(key, monkeypatch):
    case = CASES[key]
    X, y = _epoch(case)
    run = contenders.matrixprop_train(case, X, y)
    fitted = []
    fit = contenders.mp.fit
    monkeypatch.setattr(contenders.mp, "fit", lambda net, *a, **kw: fitted.append(
        (net.params.copy(), kw)) or fit(net, *a, **kw))
    _assert_rate(run(), len(X))
    _assert_rate(run(), len(X))
    (before, kwargs), (after, _) = fitted
    assert kwargs["batch_size"] == case.batch and kwargs["epochs"] == 1 and kwargs["shuffle"]
    assert kwargs["optimizer"].lr == contenders.LR and kwargs["loss"] == case.loss
    assert not np.array_equal(before, after)  # the first epoch moved the weights


def test_matrixprop_predict_reports_a_positive_rate():
    case = CASES["predict256_b1024"]
    X, y = make_data(case.batch + 5, seed=1)
    _assert_rate(contenders.matrixprop_predict(case, X, y)(), len(X))


def test_epoch_samples_are_whole_batches():
    case = CASES["relu256_b32"]
    assert case.epoch_samples(100) == 96
    assert case.epoch_samples(5) == 32


def _write_idx(path, array):
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">HBB", 0, 0x08, array.ndim))
        handle.write(struct.pack(f">{array.ndim}I", *array.shape))
        handle.write(array.astype(np.uint8).tobytes())


def test_read_mnist_scales_pixels_and_repeats_to_the_asked_size(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    labels = np.array([7, 0, 9])
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    X, y = read_mnist(tmp_path, 5)
    assert X.dtype == np.float32 and X.shape == (5, 784)
    np.testing.assert_allclose(X[4], images[1].reshape(-1) / 255.0, rtol=1e-6)
    assert y.tolist() == [7, 0, 9, 7, 0]


def test_summary_gives_medians_and_paired_ratios():
    T = contenders.Timing
    timings = {  # matrixprop 2x, 4x, 1x the other in three paired repetitions
        "matrixprop": [T(100, 1.0), T(100, 0.5), T(100, 2.0)],
        "PyTorch": [T(100, 2.0), T(100, 2.0), T(100, 2.0)],
    }
    summary = summarize(CASES["relu256_b32"], timings)
    assert summary["median"] == {"matrixprop": 100.0, "PyTorch": 50.0}
    assert summary["ratios"] == {"PyTorch": 2.0}
    cells = table([summary])[-1].strip("| ").split(" | ")
    assert cells[2:6] == ["100", "–", "50", "–"]  # matrixprop, mp NumPy (absent), PyTorch, sklearn
    assert cells[10] == "2.00"  # mp/PyTorch, after the seven rates and mp/mp NumPy


def test_absent_frameworks_are_skipped_with_a_note(monkeypatch):
    from benchmarks import environment, train_speed

    absent = ("jax", "torch")  # the others "import" without loading anything
    monkeypatch.setattr(environment, "try_import",
                        lambda name: None if name.split(".")[0] in absent else object())
    chosen, notes = train_speed.available_contenders(train=True)
    assert list(chosen) == ["matrixprop", "mp NumPy", "sklearn", "GEMM bound"]
    assert notes == ["PyTorch skipped: torch is not installed",
                     "JAX step skipped: jax is not installed",
                     "JAX scan skipped: jax is not installed"]
    chosen, _ = train_speed.available_contenders(train=False)
    assert list(chosen) == ["matrixprop", "GEMM bound"]
