"""A training step in steady state allocates no arrays (buffers are allocated once, reused).

NumPy's ufunc machinery itself takes a bounded scratch buffer for broadcast operations (at most
8192 elements, 32 KiB in float32, whatever the array sizes), and small Python objects come and go.
The test therefore runs at batch 2048, where every activation buffer (2048 x width x 4 bytes, at
least 80 KiB for the 10-wide outputs and 256 KiB for hidden layers) is larger than the 64 KiB
allowed: any array of the batch's size breaks the bound.
"""

import tracemalloc

import numpy as np
import pytest

import matrixprop as mp
from matrixprop.training import Trainer

NUMPY_SCRATCH = 2 * 8192 * 4  # two ufunc buffers in float32, with room for small objects

CASES = [
    # sizes, hidden, output, loss, optimizer, dropout, sample weights
    ([784, 256, 10], "relu", "softmax", "cross_entropy", mp.optimizers.SGD(lr=0.01), 0.0, False),
    ([784, 128, 10], "sigmoid", "sigmoid", "half_sse",
     mp.optimizers.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4), 0.0, False),
    ([784, 128, 64, 10], "tanh", "softmax", "cross_entropy", mp.optimizers.Adam(), 0.3, True),
    ([784, 128, 10], "gelu", "identity", "mse", mp.optimizers.RMSprop(centered=True), 0.0, False),
    ([784, 128, 10], "elu", "softmax", "half_sse", mp.optimizers.Adagrad(), 0.0, False),
    ([784, 128, 1], "leaky_relu", "sigmoid", "binary_cross_entropy", mp.optimizers.AdamW(), 0.0,
     False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}-{c[3]}-{c[4].name}")
def test_steady_state_step_allocates_nothing(case):
    sizes, hidden, output, loss, optimizer, dropout, weighted = case
    rng = np.random.default_rng(0)
    n, batch = 4096, 2048
    X = rng.random((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1] if sizes[-1] > 1 else 2, n)
    net = mp.MLP(sizes, hidden, output, seed=0, dropout=dropout)
    trainer = Trainer(net, X, y, loss=loss, optimizer=optimizer, batch_size=batch, shuffle=True,
                      seed=0, l2=0.5, sample_weight=rng.random(n) if weighted else None,
                      gradient_hooks=None, clip_grad_norm=1.0)
    order = trainer.epoch_order(0)
    batches = [order[i:i + batch] for i in range(0, n, batch)]
    for rows in batches:  # warm-up: workspaces and optimizer state are allocated here
        trainer.train_step(rows)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        kept = []
        for _ in range(6):
            for rows in batches:
                trainer.train_step(rows)
            kept.append(tracemalloc.get_traced_memory()[0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < NUMPY_SCRATCH, f"a step allocated {peak - before} bytes"
    assert kept[5] - kept[2] < 1024, "memory kept by steps grows"
    assert kept[0] - before < 8192  # small interpreter objects at most


def test_the_allocation_check_would_catch_an_allocating_step():
    """Guard against a tracemalloc set-up that sees nothing: a copy per step is detected."""
    X = np.ones((2048, 10), dtype=np.float32)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(3):
            X.copy()  # the smallest activation buffer of the cases above: 80 KiB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before >= X.nbytes > NUMPY_SCRATCH
