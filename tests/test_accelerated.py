"""The compiled epochs (numba) compute what the NumPy engine computes, to float rounding."""

import contextlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import get_num_threads
from threadpoolctl import threadpool_limits

import matrixprop as mp
import matrixprop.accelerated as accelerated
from matrixprop.training import Trainer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(53, 6))
LABELS = RNG.integers(0, 3, 53)
WEIGHTS = RNG.random(53)

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]
PAIRS = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
         ("identity", "half_sse"), ("sigmoid", "half_sse"), ("softmax", "mse"),
         ("tanh", "mse"), ("gelu", "half_sse")]
OPTIMIZERS = {
    "sgd": lambda: mp.optimizers.SGD(lr=0.05),
    "momentum": lambda: mp.optimizers.SGD(lr=0.05, momentum=0.9, dampening=0.1,
                                          weight_decay=1e-3),
    "nesterov": lambda: mp.optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: mp.optimizers.Adam(lr=0.01, weight_decay=1e-3),
    "adamw": lambda: mp.optimizers.AdamW(lr=0.01),
    "adagrad": lambda: mp.optimizers.Adagrad(lr=0.05, lr_decay=0.01),
    "rmsprop": lambda: mp.optimizers.RMSprop(lr=0.01, momentum=0.5),
    "rmsprop-centered": lambda: mp.optimizers.RMSprop(lr=0.01, centered=True),
}


@pytest.fixture(params=["whole", "whole, Z = A W^T", "split", "split, row sums"])
def steps(request, monkeypatch):
    """Each step in one piece (its forward products as Z^T = W A^T, as at small batches, or
    as Z = A W^T, as at large ones), or each step's rows and units split into three shares
    run at once by the parallel kernel, whatever the machine's cores (BLAS at one thread
    meanwhile, as a real split holds it), the weight gradients by the units' products over
    the whole batch or summed from the shares' products over their rows."""
    if request.param == "whole, Z = A W^T":
        monkeypatch.setattr(accelerated, "TRANSPOSED_FORWARD_MAX_ROWS", 0)
    elif request.param != "whole":
        split_in_three(monkeypatch)
        monkeypatch.setattr(accelerated, "ROW_SUMS_MIN_INPUTS_PER_WEIGHT",
                            0.0 if request.param.endswith("row sums") else math.inf)
    return request.param


def split_in_three(monkeypatch):
    """Every step of three rows or more splits into three shares."""
    @contextlib.contextmanager
    def three_shares(n, min_rows, most=None, one_thread_each=False):
        with threadpool_limits(1, user_api="blas"):
            yield 3 if n >= 3 else 1

    monkeypatch.setattr(accelerated, "shared_blas", three_shares)


def train_both(make_net, Y, **options):
    """Final parameters, history and gradient buffer of the NumPy engine and of the compiled
    epochs."""
    results = []
    for accelerate in (False, True):
        net = make_net()
        opt = options.get("optimizer", OPTIMIZERS["sgd"])()
        history = mp.fit(net, X, Y, **{**options, "optimizer": opt}, accelerate=accelerate)
        results.append((net.params.copy(), history, net.grads.copy()))
    return results


def assert_same(results, rtol=1e-12, loss_rtol=1e-9):
    """Same parameters, losses and hits; same gradient buffer when the results hold it."""
    (numpy_params, numpy_history, *numpy_grads), (fast_params, fast_history, *fast_grads) = (
        results)
    scale = np.max(np.abs(numpy_params))
    assert np.max(np.abs(numpy_params - fast_params)) <= rtol * scale
    if numpy_grads:  # the gradient itself, never the optimizer's direction
        grads_scale = np.max(np.abs(numpy_grads[0]))
        assert np.max(np.abs(numpy_grads[0] - fast_grads[0])) <= rtol * 100 * grads_scale
    np.testing.assert_allclose(fast_history["loss"], numpy_history["loss"], rtol=loss_rtol)
    if "accuracy" in numpy_history:
        assert fast_history["accuracy"] == numpy_history["accuracy"]


def targets(loss):
    return np.eye(3)[LABELS] if loss == "binary_cross_entropy" else LABELS


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("output", "loss"), PAIRS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean"])
def test_every_activation_and_loss_matches_the_numpy_engine(hidden, output, loss, reduction):
    results = train_both(lambda: mp.MLP([6, 5, 4, 3], hidden, output, seed=1, dtype="float64"),
                         targets(loss), loss=mp.losses.get(loss, reduction=reduction),
                         batch_size=8, epochs=2, seed=3)
    assert_same(results)


@pytest.mark.parametrize(("output", "loss"), PAIRS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean"])
def test_every_loss_matches_in_split_steps(output, loss, reduction, steps):
    """Through three layers, with sample weights; the binary cross-entropy network's last
    layer has fewer units (2) than the split has shares (3)."""
    results = train_both(lambda: mp.MLP([6, 5, 4, 2 if loss == "binary_cross_entropy" else 3],
                                        "softplus", output, seed=1, dtype="float64"),
                         np.eye(2)[LABELS % 2] if loss == "binary_cross_entropy" else LABELS,
                         loss=mp.losses.get(loss, reduction=reduction), batch_size=8,
                         epochs=2, seed=3, sample_weight=WEIGHTS)
    assert_same(results)


@pytest.mark.parametrize("clip", [None, 0.3])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_with_l2_clipping_and_weights_matches(name, clip, steps):
    """Without clipping each layer's units take their step on their own; with it, every
    parameter at once after the whole gradient's norm."""
    results = train_both(lambda: mp.MLP([6, 7, 3], "tanh", "softmax", seed=2, dtype="float64"),
                         LABELS, optimizer=OPTIMIZERS[name], batch_size=10, epochs=3, seed=4,
                         l2=0.5, clip_grad_norm=clip, sample_weight=WEIGHTS)
    assert_same(results)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_adam_with_l2_alone_matches(dtype, rtol, steps):
    """Without clipping or weight decay, Adam adds the L2 term in its own pass."""
    results = []
    for accelerate in (False, True):
        net = mp.MLP([6, 7, 3], "tanh", "softmax", seed=2, dtype=dtype)
        history = mp.fit(net, X.astype(dtype), LABELS, optimizer=mp.optimizers.Adam(lr=0.01),
                         l2=0.5, batch_size=10, epochs=3, seed=4, accelerate=accelerate)
        results.append((net.params.copy(), history, net.grads.copy()))
    assert_same([r[:2] for r in results], rtol=rtol, loss_rtol=rtol)
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=rtol * 100, atol=rtol)


SGD_IN_PRODUCTS = {  # nothing added to the gradient: the step or the buffer rides in a product
    "plain": lambda: mp.optimizers.SGD(lr=0.05),
    "momentum": lambda: mp.optimizers.SGD(lr=0.05, momentum=0.9),
    "momentum-dampened": lambda: mp.optimizers.SGD(lr=0.05, momentum=0.8, dampening=0.3),
    "momentum-per-weight": lambda: mp.optimizers.SGD(
        lr={"layers.0.weight": np.linspace(0, 0.1, 30).reshape(5, 6), "layers.2.bias": 0.0,
            "default": 0.05}, momentum=0.9),
}


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("name", SGD_IN_PRODUCTS)
def test_sgd_steps_folded_into_the_products_match(name, dtype, rtol, steps):
    """Two fits in a row with one optimizer: the second starts with a momentum buffer. Both
    dtypes, as the products and momentum's step call BLAS's single- or double-precision
    routines."""
    def make():
        return mp.Network([mp.Dense(6, 5, "elu"), mp.Dense(5, 4, "relu", bias=False),
                           mp.Dense(4, 3, "softmax")], seed=0, dtype=dtype)

    results = []
    for accelerate in (False, True):
        net, opt = make(), SGD_IN_PRODUCTS[name]()
        for seed in (1, 2):
            history = mp.fit(net, X.astype(dtype), LABELS, optimizer=opt, batch_size=10,
                             epochs=2, seed=seed, sample_weight=WEIGHTS.astype(dtype),
                             accelerate=accelerate)
        results.append((net.params.copy(), history, net.grads.copy()))
    assert_same([r[:2] for r in results], rtol=rtol, loss_rtol=rtol)
    # the last step of each compiled call computes its gradient: the buffer ends as in NumPy
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=rtol * 100,
                               atol=rtol * 1e-1)


def test_a_momentum_buffer_missing_from_the_state_is_refused():
    net = mp.MLP([6, 4, 3], "relu", "softmax", seed=0)
    opt = mp.optimizers.SGD(lr=0.05)
    opt.setup(net)
    opt.momentum = 0.9  # after setup: no buffer was allocated
    with pytest.raises(ValueError, match="optimizer state 'momentum_buffer' does not match"):
        mp.fit(net, X, LABELS, optimizer=opt, epochs=1, accelerate=True)


def test_per_weight_rates_layers_without_bias_and_no_shuffling(steps):
    def make():
        return mp.Network([mp.Dense(6, 5, "relu", bias=False), mp.Dense(5, 3, "softmax")],
                          seed=0, dtype="float64")

    rates = {"layers.0.weight": np.linspace(0, 0.1, 30).reshape(5, 6), "default": 0.05}
    results = train_both(make, LABELS, optimizer=lambda: mp.optimizers.Adam(lr=rates),
                         batch_size=7, epochs=2, shuffle=False)
    assert_same(results)
    frozen = results[1][0][0]  # the weight whose rate is 0 has not moved
    assert frozen == make().params[0]


def test_float32_matches_within_float32_rounding():
    results = train_both(lambda: mp.MLP([6, 16, 3], "relu", "softmax", seed=0), LABELS,
                         batch_size=4, epochs=3, seed=0)
    (a, *_), (b, *_) = results
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_compiled_path_is_used_only_when_it_can_run():
    net = mp.MLP([6, 4, 3], "relu", "softmax", seed=0)

    def trainer(**options):
        settings = dict(loss=None, optimizer=None, batch_size=8, shuffle=True, seed=0, l2=0.0,
                        sample_weight=None, gradient_hooks=None, clip_grad_norm=None)
        return Trainer(net, X, LABELS, **{**settings, **options})

    assert trainer(accelerate="auto").engine.name == "compiled"
    assert trainer(accelerate=False).engine.name == "numpy"
    hooked = trainer(accelerate="auto", gradient_hooks=[print]).engine
    assert hooked.name == "numpy" and "gradient hooks" in hooked.reason
    with pytest.raises(ValueError, match="gradient hooks"):
        trainer(accelerate=True, gradient_hooks=[print])
    dropout = mp.MLP([6, 4, 3], "relu", "softmax", seed=0, dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        mp.fit(dropout, X, LABELS, accelerate=True)
    with pytest.raises(ValueError, match="accelerate must be"):
        trainer(accelerate="yes")


def test_divergence_is_reported_at_its_step(steps):
    """At the step the NumPy engine reports (diverging runs amplify rounding, so their
    parameters are not compared)."""
    reports = []
    for accelerate in (False, True):
        net = mp.MLP([6, 8, 1], "identity", seed=0, dtype="float64")
        with pytest.raises(FloatingPointError, match="epoch 1, step") as raised:
            mp.fit(net, X * 1e3, X[:, 0] * 1e3, loss="mse", optimizer=mp.optimizers.SGD(lr=1.0),
                   batch_size=4, epochs=5, accelerate=accelerate)
        reports.append(str(raised.value))
    assert reports[1] == reports[0]


def test_batch_callbacks_run_on_the_compiled_engine_step_by_step():
    """Each step is then its own kernel call: the callbacks see the NumPy engine's steps and
    batch losses, and the weights end the same."""
    runs = []
    for accelerate in (False, True):
        seen = []

        class EveryBatch(mp.Callback):
            def __init__(self, seen):
                self.seen = seen

            def on_batch_end(self, state):
                self.seen.append((state.step, state.batch_loss))

        net = mp.MLP([6, 3], "softmax", seed=0, dtype="float64")
        history = mp.fit(net, X, LABELS, batch_size=10, epochs=2, seed=0,
                         callbacks=[EveryBatch(seen)], accelerate=accelerate)
        runs.append((seen, net.params.copy(), history.engine))
    (numpy_seen, numpy_params, numpy_engine), (seen, params, engine) = runs
    assert (numpy_engine, engine) == ("numpy", "compiled")
    assert [step for step, _ in seen] == [0, 1, 2, 3, 4, 5] * 2
    np.testing.assert_allclose([loss for _, loss in seen], [loss for _, loss in numpy_seen],
                               rtol=1e-12)
    np.testing.assert_allclose(params, numpy_params, rtol=1e-12, atol=1e-14)


def test_fit_frees_its_copies_without_waiting_for_the_cycle_collector():
    """The compiled runner must not hold its trainer (a cycle kept the data's copies alive)."""
    import gc
    import tracemalloc

    X64 = np.random.default_rng(0).random((2000, 100))  # float64: fit keeps a float32 copy
    y = np.random.default_rng(1).integers(0, 10, 2000)
    net = mp.MLP([100, 16, 10], "relu", "softmax", seed=0)
    mp.fit(net, X64[:50], y[:50], epochs=1, accelerate=True)  # compile outside the measurement
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        mp.fit(net, X64, y, epochs=1, accelerate=True, optimizer=mp.optimizers.SGD(lr=0.1))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert after - before < X64.nbytes // 8  # the float32 copy alone is half of X64


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_compiled_prediction_matches_the_numpy_engine(hidden, dtype):
    rows = np.random.default_rng(1).normal(size=(2500, 6)).astype(dtype)
    for output, bias in (("softmax", True), ("sigmoid", False), ("identity", True)):
        net = mp.MLP([6, 9, 7, 3], hidden, output, seed=0, dtype=dtype, bias=bias)
        expected = net.predict(rows, accelerate=False)
        for chunk in (None, 1000, 2500, 4000):  # partial last chunk, one chunk, more than all
            got = net.predict(rows, batch_size=chunk, accelerate=True)
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, expected, rtol=1e-12 if dtype == "float64" else 2e-6,
                                       atol=1e-14 if dtype == "float64" else 1e-6)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_a_nan_stays_nan_in_both_engines(hidden):
    """A unit whose weights went NaN: every output is NaN in both engines (each activation
    keeps a NaN z NaN, as NumPy's functions do)."""
    net = mp.MLP([6, 9, 3], hidden, "softmax", seed=0)
    net.layers[0].W[2] = np.nan
    rows = np.random.default_rng(1).normal(size=(2500, 6))
    with np.errstate(invalid="ignore"):
        assert np.isnan(net.predict(rows, accelerate=False)).all()
        assert np.isnan(net.predict(rows, accelerate=True)).all()


def test_prediction_engine_choice(monkeypatch):
    from matrixprop import accelerated

    made = []
    predictor = accelerated.predictor
    monkeypatch.setattr(accelerated, "predictor",
                        lambda wanted, net: made.append(wanted) or predictor(wanted, net))
    net = mp.MLP([6, 4, 3], "relu", "softmax", seed=0)
    net.predict(X)  # 53 rows: "auto" stays in NumPy
    net.predict(np.zeros((2048, 6)))
    net.predict(X[:1], accelerate=True)
    assert made == [False, "auto", True]
    with pytest.raises(ValueError, match="accelerate must be True, False or 'auto', got 'on'"):
        net.predict(X, accelerate="on")


@pytest.mark.parametrize("missing", ["numba", "scipy"])
def test_without_numba_or_scipy_auto_falls_back_and_true_says_why(monkeypatch, missing):
    """numba's BLAS calls go through SciPy: either one missing means no compiled path."""
    import importlib.util

    from matrixprop import accelerated

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else find_spec(name, *a))
    assert not accelerated.available()
    net = mp.MLP([6, 4, 3], "relu", "softmax", seed=0)
    history = mp.fit(net, X, LABELS, epochs=1)  # "auto": the NumPy engine
    assert len(history) == 1
    with pytest.raises(ValueError, match="numba or scipy is not installed"):
        mp.fit(net, X, LABELS, epochs=1, accelerate=True)
    with pytest.raises(ValueError, match="numba or scipy is not installed"):
        net.predict(X, accelerate=True)


two_threads = pytest.mark.skipif(
    get_num_threads() < 2, reason="numba runs one thread here: there is nothing to split over")


@two_threads
def test_a_real_split_holds_blas_to_one_thread_per_share(monkeypatch):
    """With two BLAS threads, a batch of at least two shares' rows runs in the parallel
    kernel, BLAS held at one thread meanwhile and given its two back afterwards; the result is
    the NumPy engine's."""
    from matrixprop.accelerated import _kernels

    seen = []

    def spy(parts, *args):
        seen.append((parts, _blas_threads()))
        return split_kernel(parts, *args)

    split_kernel = _kernels.train_steps_split
    monkeypatch.setattr(_kernels, "train_steps_split", spy)
    monkeypatch.setattr(accelerated, "MIN_ROWS_PER_SHARE", 4)
    monkeypatch.setattr(accelerated, "MIN_SPLIT_WORK", 0)
    with threadpool_limits(2, user_api="blas"):
        results = train_both(lambda: mp.MLP([6, 7, 3], "tanh", "softmax", seed=2,
                                            dtype="float64"),
                             LABELS, optimizer=OPTIMIZERS["adam"], batch_size=10, epochs=2,
                             seed=4)
        assert _blas_threads() == {2}
    assert seen and all(entry == (2, {1}) for entry in seen)
    assert_same(results)


def test_whole_steps_of_few_rows_compute_the_transposed_products(monkeypatch):
    from matrixprop.accelerated import _kernels

    kernel, seen = _kernels.train_steps, []

    def spy(*args):
        seen.append(args[7][-1][0].shape)  # the first layer's scratch for Z^T
        return kernel(*args)

    monkeypatch.setattr(_kernels, "train_steps", spy)
    net = mp.MLP([6, 7, 3], "tanh", "softmax", seed=2)
    monkeypatch.setattr(accelerated, "TRANSPOSED_FORWARD_MAX_ROWS", 9)
    mp.fit(net, X, LABELS, batch_size=10, epochs=1, accelerate=True)  # 5 x 10 rows, then 3
    assert seen == [(7, 0), (7, 3)]


def test_split_steps_sum_the_shares_weight_gradients_from_enough_inputs_per_weight(
        monkeypatch):
    from matrixprop.accelerated import _kernels

    split_in_three(monkeypatch)
    kernel, seen = _kernels.train_steps_split, []

    def spy(*args):
        seen.append(args[-1][0].shape[0])  # the first layer's sums: one per share, or none
        return kernel(*args)

    monkeypatch.setattr(_kernels, "train_steps_split", spy)
    net = mp.MLP([6, 7, 3], "tanh", "softmax", seed=2)  # 63 weights, 6 inputs
    for batch, expected in ((10, [0, 0]), (11, [3, 0])):  # 60 and 66 inputs, and 18 and 54
        seen.clear()  # in the last, partial batch
        mp.fit(net, X, LABELS, batch_size=batch, epochs=1, accelerate=True)
        assert seen == expected
    monkeypatch.setattr(accelerated, "MAX_SPLIT_BYTES", 3 * 63 * 4 - 1)  # the sums: too large
    seen.clear()
    mp.fit(net, X, LABELS, batch_size=11, epochs=1, accelerate=True)
    assert seen == [0, 0]


@two_threads
def test_steps_too_large_or_too_small_to_gain_from_the_split_run_whole(monkeypatch):
    from matrixprop.accelerated import _kernels

    def refuse(*args):
        raise AssertionError("the split kernel ran")

    monkeypatch.setattr(_kernels, "train_steps_split", refuse)
    monkeypatch.setattr(accelerated, "MIN_ROWS_PER_SHARE", 4)
    monkeypatch.setattr(accelerated, "MIN_SPLIT_WORK", 0)
    net = mp.MLP([6, 7, 3], "tanh", "softmax", seed=2, dtype="float64")
    monkeypatch.setattr(accelerated, "MAX_SPLIT_BYTES", net.params.nbytes - 1)
    with threadpool_limits(2, user_api="blas"):
        mp.fit(net, X, LABELS, batch_size=10, epochs=1, accelerate=True)
    monkeypatch.setattr(accelerated, "MAX_SPLIT_BYTES", net.params.nbytes)
    monkeypatch.setattr(accelerated, "MIN_SPLIT_WORK", 10 * net.n_weights + 1)  # too little
    with threadpool_limits(2, user_api="blas"):
        mp.fit(net, X, LABELS, batch_size=10, epochs=1, accelerate=True)
    monkeypatch.setattr(accelerated, "MIN_SPLIT_WORK", 10 * net.n_weights)
    with threadpool_limits(2, user_api="blas"), pytest.raises(AssertionError, match="split"):
        mp.fit(net, X, LABELS, batch_size=10, epochs=1, accelerate=True)


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_numba_threads_start_only_for_batches_that_can_split(monkeypatch):
    """Asking numba for its thread count starts its threads (and, with GNU OpenMP, its
    fork guard): batches too small to split never ask; a threading layer that cannot load
    leaves the steps whole."""
    import numba

    def no_layer():
        raise ValueError("No threading layer could be loaded.")

    monkeypatch.setattr(numba, "get_num_threads", no_layer)
    monkeypatch.setattr(accelerated, "MIN_SPLIT_WORK", 0)
    net = mp.MLP([6, 7, 3], "tanh", "softmax", seed=2)
    for batch in (10, 2 * accelerated.MIN_ROWS_PER_SHARE):  # too small; then no layer
        mp.fit(net, np.tile(X, (6, 1)), np.tile(LABELS, 6), batch_size=batch, epochs=1,
               accelerate=True)


FORK_AFTER_A_SPLIT = """
import os, sys
import numpy as np
from threadpoolctl import threadpool_limits
import matrixprop as mp
import matrixprop.accelerated as accelerated
from matrixprop.accelerated import _kernels

accelerated.MIN_ROWS_PER_SHARE, accelerated.MIN_SPLIT_WORK = 4, 0
split_kernel, used = _kernels.train_steps_split, []
_kernels.train_steps_split = lambda *args: used.append(os.getpid()) or split_kernel(*args)
rng = np.random.default_rng(0)
X, y = rng.normal(size=(200, 6)), rng.integers(0, 3, 200)

def train():
    with threadpool_limits(2, user_api="blas"):
        mp.fit(mp.MLP([6, 7, 3], "tanh", "softmax", seed=0), X, y, batch_size=20, epochs=1,
               accelerate=True)

train()
assert used == [os.getpid()], used
pid = os.fork()
if pid == 0:
    train()
    os._exit(0 if used == [os.getppid()] else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@two_threads
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_process_forked_after_a_split_trains_whole():
    """numba's GNU OpenMP threading layer kills a forked child that starts parallel work when
    its parent had: the child trains with the one-share kernel instead."""
    done = subprocess.run([sys.executable, "-c", FORK_AFTER_A_SPLIT], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
