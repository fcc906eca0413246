"""Training runs that must end at the same weights on any number of ranks.

Imported by the tests for the single-process reference, and run under ``mpiexec`` as
``python train_cases.py OUT.npz``: every case trains with ``distributed="auto"``, and rank 0
writes what the tests compare (its weights, metrics and test accuracy, the largest difference
between its weights and any other rank's, the BLAS threads of every rank, and how often each
rank ran a callback that is not ``root_only``).
"""

from __future__ import annotations

import logging
import sys

import numpy as np

import matrixprop as mp

N_FEATURES, N_CLASSES, EPOCHS = 12, 3, 2

# name -> (training samples, fit options, network options, loss); float64 everywhere
CASES = {
    "even batches, SGD with momentum": (
        192, dict(batch_size=64, optimizer=("sgd", dict(lr=0.1, momentum=0.9))),
        dict(activation="tanh", output_activation="softmax"), "cross_entropy"),
    "partial last batch of 1 row, Adam, L2, clipping": (
        193, dict(batch_size=64, optimizer=("adam", dict(lr=0.01)), l2=0.1,
                  clip_grad_norm=0.5),
        dict(activation="relu", output_activation="softmax"), "cross_entropy"),
    "sample weights, elementwise mean": (
        193, dict(batch_size=50, optimizer=("sgd", dict(lr=0.5)), weighted=True),
        dict(activation="sigmoid", output_activation="sigmoid"), "mse"),
    "sum reduction, no shuffling": (
        150, dict(batch_size=37, optimizer=("rmsprop", dict(lr=0.001)), shuffle=False),
        dict(activation="tanh", output_activation="identity"), ("half_sse", "sum")),
    "batchmean, one sigmoid output": (
        160, dict(batch_size=40, optimizer=("adagrad", dict(lr=0.05)), binary=True),
        dict(activation="elu", output_activation="sigmoid"), ("binary_cross_entropy",
                                                               "batchmean")),
}
# Not comparable with one process (dropout masks differ), but the ranks must agree.
DROPOUT_CASE = "dropout, no seeds anywhere"


def data(n: int, binary: bool = False, seed: int = 0):
    """Training inputs, class labels and sample weights (some zero), and a test set."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 100, N_FEATURES))
    labels = (X[:, :N_CLASSES] + 0.5 * rng.normal(size=(n + 100, N_CLASSES))).argmax(axis=1)
    if binary:
        labels = (labels == 0).astype(int)
    weights = rng.uniform(0.0, 2.0, n) * (rng.random(n) > 0.2)
    return X[:n], labels[:n], weights, X[n:], labels[n:]


def train(name: str, distributed, callbacks=()) -> tuple[mp.Network, mp.History, float]:
    """Train case ``name``; return the network, its history and its test accuracy."""
    n, options, net_options, loss = CASES[name]
    options = dict(options)
    weighted, binary = options.pop("weighted", False), options.pop("binary", False)
    X, y, weights, X_test, y_test = data(n, binary)
    n_out = 1 if binary else N_CLASSES
    net = mp.MLP([N_FEATURES, 10, 8, n_out], seed=5, dtype="float64", **net_options)
    optimizer_name, optimizer_options = options.pop("optimizer")
    optimizer = mp.optimizers.get(optimizer_name, **optimizer_options)
    loss = mp.losses.get(*loss) if isinstance(loss, tuple) else mp.losses.get(loss)
    history = mp.fit(net, X, y, loss=loss, optimizer=optimizer, epochs=EPOCHS, seed=11,
                     sample_weight=weights if weighted else None,
                     validation_data=(X_test[:50], y_test[:50]), callbacks=list(callbacks),
                     distributed=distributed, **options)
    predicted = net.predict(X_test)
    predicted = (predicted[:, 0] > 0.5) if binary else predicted.argmax(axis=1)
    return net, history, float(np.mean(predicted == y_test))


def train_with_dropout(distributed) -> mp.Network:
    """Dropout, the network's weights and the shuffling all without a seed."""
    X, y, _, _, _ = data(150)
    net = mp.MLP([N_FEATURES, 16, N_CLASSES], "relu", "softmax", dropout=0.3, dtype="float64")
    mp.fit(net, X, y, batch_size=32, epochs=EPOCHS, distributed=distributed)
    return net


class CountEpochs(mp.Callback):
    """Counts epochs on every rank (not root_only)."""

    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, state):
        self.epochs += 1


def _spread(world, params: np.ndarray) -> float:
    """The largest difference between rank 0's ``params`` and another rank's (on rank 0)."""
    gathered = world.gather(params)
    return max(np.abs(p - params).max() for p in gathered) if world.rank == 0 else 0.0


def main(out: str) -> None:
    from mpi4py import MPI
    from rich.console import Console
    from threadpoolctl import threadpool_info

    world = MPI.COMM_WORLD
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    results, counter = {}, CountEpochs()
    for index, name in enumerate(CASES):
        shown = [mp.callbacks.LossLogger(), counter]
        if index == 0:
            shown.append(mp.ProgressBar(console=Console(file=sys.stderr, width=100)))
        net, history, test_accuracy = train(name, "auto", shown)
        results[f"{name}/params"] = net.params
        results[f"{name}/spread"] = _spread(world, net.params)
        results[f"{name}/test_accuracy"] = test_accuracy
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in history:
                results[f"{name}/{key}"] = history[key]
    results[f"{DROPOUT_CASE}/spread"] = _spread(world, train_with_dropout("auto").params)
    threads = max(entry["num_threads"] for entry in threadpool_info()
                  if entry["user_api"] == "blas")
    results["threads"] = world.gather(threads)
    results["callback_epochs"] = world.gather(counter.epochs)
    if world.rank == 0:
        np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1])
