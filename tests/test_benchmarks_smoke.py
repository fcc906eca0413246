"""Smoke tests of the benchmarks' pieces: the GEMM bound, matrixprop's contenders, the IDX
reader, the summaries of train_speed.py and optimizer_overhead.py, products.py's ceilings, and
memory.py's model and peak attribution, on a few batches (no PyTorch, scikit-learn or JAX
needed)."""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct
import sys
import tracemalloc
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import contenders, memory, optimizer_overhead, products  # noqa: E402
from benchmarks.cases import (  # noqa: E402
    CASES,
    OPTIMIZERS,
    build_network,
    describe_optimizer,
    make_data,
    make_optimizer,
    read_mnist,
)
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

@pytest.mark.parametrize("key", ["sigmoid30_b10", "predict256_b1024"])
def test_products_ceilings_add_up_every_product_of_a_step(key):
    case = CASES[key]
    rows, steps = products.ceilings(case, cores=2, repeats=1)
    assert sorted((row["a"], row["b"]) for row in rows) == _expected_products(
        case.sizes, case.batch, case.train)
    assert all(row[1] > 0 and row[2] > 0 for row in rows)
    assert steps["all threads, in turn"] == pytest.approx(case.batch / sum(r[2] for r in rows))
    assert steps["one thread, every core"] == pytest.approx(
        2 * case.batch / sum(r[1] for r in rows))
    table = products.report(case, rows, steps, 2)
    assert sum(line.startswith("| (") for line in table) == len(rows)


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
    assert list(chosen) == ["matrixprop", "mp NumPy", "GEMM bound"]


# -- optimizers and dtypes of the cases ------------------------------------------------------
def test_a_case_refuses_an_unknown_optimizer_or_dtype():
    with pytest.raises(ValueError, match="optimizer must be one of sgd"):
        dataclasses.replace(CASES["relu256_b32"], optimizer="lbfgs")
    with pytest.raises(ValueError, match="dtype must be one of float32, float64"):
        dataclasses.replace(CASES["relu256_b32"], dtype="float16")


def test_the_label_names_a_non_default_optimizer_and_dtype():
    case = CASES["relu256_b128"]
    assert dataclasses.replace(case, optimizer="adam", dtype="float64").label == (
        "[784,256,128,10] relu softmax CE, 128, adam, float64")
    assert dataclasses.replace(case, dtype="float64").label.endswith(", 128, float64")
    assert case.label.endswith(", 128")


@pytest.mark.parametrize("key", list(OPTIMIZERS))
def test_make_optimizer_builds_the_settings_of_the_table(key):
    opt = make_optimizer(dataclasses.replace(CASES["relu256_b32"], optimizer=key))
    kind, params = OPTIMIZERS[key]
    assert type(opt).__name__ == kind
    assert all(getattr(opt, name) == value for name, value in params.items())
    assert describe_optimizer(key).startswith(f"{kind}(lr=")


def test_matrixprop_train_runs_the_case_optimizer_on_data_in_its_dtype(monkeypatch):
    case = dataclasses.replace(CASES["relu256_b32"], optimizer="nesterov", dtype="float64")
    X, y = _epoch(case)
    seen = []
    fit = contenders.mp.fit
    monkeypatch.setattr(contenders.mp, "fit", lambda net, X, *a, **kw: seen.append(
        (net.dtype, X.dtype, kw["optimizer"])) or fit(net, X, *a, **kw))
    run = contenders.matrixprop_numpy_train(case, X, y)
    _assert_rate(run(), len(X))
    net_dtype, x_dtype, opt = seen[0]
    assert net_dtype == np.float64 and x_dtype == np.float64
    assert opt.momentum == 0.9 and opt.nesterov and opt.t == STEPS


def test_train_speed_options_reach_every_case_and_jax_sits_out(monkeypatch):
    from benchmarks import environment, train_speed

    monkeypatch.setattr(environment, "try_import", lambda name: object())  # all "installed"
    args = train_speed.parse_args(["--optimizer", "adam", "--dtype", "float64", "--quick"])
    assert (args.optimizer, args.dtype, args.repeats) == ("adam", "float64", 2)
    chosen, notes = train_speed.available_contenders(train=True, plain=False)
    assert "JAX step" not in chosen and "JAX scan" not in chosen
    assert "JAX scan skipped: it runs plain SGD in float32 only" in notes


# -- optimizer_overhead.py -------------------------------------------------------------------
def test_overhead_arguments_always_run_plain_sgd_first():
    args = optimizer_overhead.parse_args(["--optimizers", "adam", "momentum", "adam"])
    assert args.optimizers == ["sgd", "adam", "momentum"]
    assert args.dtypes == ["float32", "float64"]


def test_overhead_summary_pairs_each_repetition():
    T = contenders.Timing
    timings = {  # seconds per epoch of 100 samples, three repetitions
        ("matrixprop", "sgd"): [T(100, 1.0), T(100, 2.0), T(100, 1.0)],
        ("matrixprop", "adam"): [T(100, 1.2), T(100, 2.2), T(100, 1.5)],
        ("PyTorch", "sgd"): [T(100, 2.0), T(100, 2.0), T(100, 4.0)],
        ("PyTorch", "adam"): [T(100, 2.0), T(100, 3.0), T(100, 3.0)],
    }
    s = optimizer_overhead.summarize("float64", timings)
    assert s["median"]["matrixprop"] == {"sgd": 100.0, "adam": 100 / 1.5}
    assert s["overhead"]["matrixprop"]["adam"] == pytest.approx(0.2)  # of 0.2, 0.1, 0.5
    assert s["overhead"]["PyTorch"]["adam"] == pytest.approx(0.0)  # of 0, 0.5, -0.25
    assert s["vs_torch"] == {"matrixprop": {"sgd": 2.0, "adam": pytest.approx(2 / 1.2)}}
    lines = optimizer_overhead.tables([s])
    assert "| adam, float64 | 67 | 33 | 1.67 |" in lines
    assert "| adam, float64 | +20% | +0% | <= 25% |" in lines


def test_overhead_measure_times_every_framework_and_optimizer(monkeypatch):
    monkeypatch.setattr(optimizer_overhead, "FRAMEWORKS",
                        (("mp NumPy", contenders.matrixprop_numpy_train, None),))
    case = CASES["relu256_b32"]
    X, y = _epoch(case)
    timings = optimizer_overhead.measure(case.key, "float64", ["sgd", "adam"], X, y, 2, 0)
    assert list(timings) == [("mp NumPy", "sgd"), ("mp NumPy", "adam")]
    assert all(len(ts) == 2 for ts in timings.values())
    _assert_rate(timings["mp NumPy", "adam"][1], len(X))


# -- memory.py -------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_memory_model_matches_the_arrays_of_a_set_up_network(optimizer):
    case = dataclasses.replace(CASES["relu256_b32"], optimizer=optimizer, dtype="float64")
    net, opt = build_network(case), make_optimizer(case)
    opt.setup(net)
    model = memory.model_bytes(case, 1000)
    assert model["data X"] == 1000 * 784 * 8 and model["labels y"] == 1000 * 8
    assert model["parameters"] == net.params.nbytes and model["gradients"] == net.grads.nbytes
    assert model["optimizer state"] == sum(buf.nbytes for buf in opt.state.values())
    assert model["one batch's activations"] == 32 * (784 + 256 + 128 + 10) * 8


def _allocate_and_free(n):
    block = np.ones(n)  # the line the attribution must name
    del block


def test_peak_attribution_credits_the_allocating_line():
    tracemalloc.start()
    try:
        with memory.PeakAttribution(package=__file__) as attribution:
            _allocate_and_free(250_000)
    finally:
        tracemalloc.stop()
    line = _allocate_and_free.__code__.co_firstlineno + 1
    assert attribution.rises[__file__, line] >= 250_000 * 8
    assert sum(attribution.rises.values()) == attribution.peak - attribution.start


def test_memory_measure_accounts_for_the_peak():
    case = CASES["relu256_b32"]
    r = memory.measure(case, 4 * case.batch, "NumPy")
    assert r["model_total"] == sum(memory.model_bytes(case, 4 * case.batch).values())
    data = r["model"]["data X"] + r["model"]["labels y"]
    assert data < r["before_fit"] < r["peak"] == max(r["setup_peak"], r["epoch_peak"])
    assert r["ratio"] == r["peak"] / r["model_total"]
    assert sum(h["bytes"] for h in r["rises"]) == r["peak"] - r["before_fit"]
    assert any("optimizers.py" in h["line"] and "_scratch" in h["line"] for h in r["kept"])
    assert "| [784,256,128,10] relu softmax CE, 32 | NumPy | 128 |" in memory.report([r])
