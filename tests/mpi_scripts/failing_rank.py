"""Rank 1 raises in its first epoch; without the abort, rank 0 would wait in the next
all-reduce forever."""

import numpy as np

import matrixprop as mp


class FailOnRankOne(mp.Callback):
    def __init__(self, rank: int):
        self.rank = rank

    def on_epoch_end(self, state):
        if self.rank == 1:
            raise RuntimeError("rank 1 failed on purpose")


def main() -> None:
    comm = mp.distributed.get_communicator("auto")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
    net = mp.MLP([4, 3, 2], "tanh", "softmax", seed=0)
    mp.fit(net, X, y, epochs=100_000, batch_size=8, callbacks=[FailOnRankOne(comm.rank)])


if __name__ == "__main__":
    main()
