"""Rank 1 fails: ``callback`` raises in its first epoch (without the abort, rank 0 would wait in
the next all-reduce forever); ``data`` passes fewer training samples than rank 0."""

import sys

import numpy as np

import matrixprop as mp


class FailOnRankOne(mp.Callback):
    def __init__(self, rank: int):
        self.rank = rank

    def on_epoch_end(self, state):
        if self.rank == 1:
            raise RuntimeError("rank 1 failed on purpose")


def main(how: str) -> None:
    comm = mp.distributed.get_communicator("auto")
    rng = np.random.default_rng(0)
    n = 60 if how == "data" and comm.rank == 1 else 64
    X, y = rng.normal(size=(n, 4)), rng.integers(0, 2, n)
    net = mp.MLP([4, 3, 2], "tanh", "softmax", seed=0)
    callbacks = [FailOnRankOne(comm.rank)] if how == "callback" else []
    mp.fit(net, X, y, epochs=100_000, batch_size=8, callbacks=callbacks)


if __name__ == "__main__":
    main(sys.argv[1])
