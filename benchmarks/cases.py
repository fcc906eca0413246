"""The benchmark's configurations and the data they run on."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import matrixprop as mp

__all__ = ["Case", "CASES", "DTYPES", "LR", "N_CLASSES", "OPTIMIZERS", "describe_optimizer",
           "initial_state", "make_data", "make_optimizer", "read_mnist"]

LR = 0.01  # plain SGD, the same in every framework
ADAM_LR = 0.001  # PyTorch's default for Adam
# optimizer key -> (class name in matrixprop.optimizers and torch.optim, keyword arguments):
# the two libraries share the names, the defaults and the update formulas
OPTIMIZERS: dict[str, tuple[str, dict]] = {
    "sgd": ("SGD", {"lr": LR}),
    "momentum": ("SGD", {"lr": LR, "momentum": 0.9}),
    "nesterov": ("SGD", {"lr": LR, "momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", {"lr": ADAM_LR}),
}
DTYPES = ("float32", "float64")
N_CLASSES = 10
N_FEATURES = 784
MNIST_TRAIN = 60_000  # training images in MNIST: no row's epoch needs more


@dataclass(frozen=True)
class Case:
    """One row of the table: a network, a batch size, and how many samples an epoch holds.

    Attributes
    ----------
    key : str
        The name ``--configs`` selects it by.
    sizes : tuple of int
        Layer widths, input first.
    activation : str
        Hidden activation (``"sigmoid"`` or ``"relu"``).
    loss : str
        ``"half_sse"`` (sigmoid outputs, the article's network) or ``"cross_entropy"``
        (softmax outputs).
    batch : int
        Samples per step (per forward call for inference).
    samples : int
        Samples per timed epoch in a full run.
    quick_samples : int
        Samples per timed epoch with ``--quick``.
    train : bool
        Training (forward, backward, optimizer step) or inference (forward only).
    optimizer : str
        A key of :data:`OPTIMIZERS` (``"sgd"``: plain SGD at :data:`LR`).
    dtype : str
        ``"float32"`` or ``"float64"``: the data, the weights and every framework's arithmetic.
    """

    key: str
    sizes: tuple[int, ...]
    activation: str
    loss: str
    batch: int
    samples: int
    quick_samples: int
    train: bool = True
    optimizer: str = "sgd"
    dtype: str = "float32"

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    @property
    def output_activation(self) -> str:
        return "softmax" if self.loss == "cross_entropy" else self.activation

    @property
    def label(self) -> str:
        """The row's name in the table."""
        net = "[" + ",".join(map(str, self.sizes)) + "]"
        extra = "" if self.dtype == "float32" else f", {self.dtype}"
        if not self.train:
            return f"inference {net} {self.activation}, {self.batch}{extra}"
        loss = "half-SSE" if self.loss == "half_sse" else "softmax CE"
        if self.optimizer != "sgd":
            extra = f", {self.optimizer}{extra}"
        return f"{net} {self.activation} {loss}, {self.batch}{extra}"

    def epoch_samples(self, samples: int) -> int:
        """``samples`` rounded down to whole batches (at least one), so no step is partial."""
        return max(samples // self.batch, 1) * self.batch


_MLP = (N_FEATURES, 256, 128, N_CLASSES)
_WIDE = (N_FEATURES, 1024, 1024, N_CLASSES)
CASES: dict[str, Case] = {
    case.key: case
    for case in (
        Case("sigmoid30_b10", (N_FEATURES, 30, N_CLASSES), "sigmoid", "half_sse", 10,
             samples=40_000, quick_samples=3_000),
        Case("relu256_b32", _MLP, "relu", "cross_entropy", 32, samples=32_000,
             quick_samples=2_000),
        Case("relu256_b128", _MLP, "relu", "cross_entropy", 128, samples=51_200,
             quick_samples=3_072),
        Case("relu256_b1024", _MLP, "relu", "cross_entropy", 1024, samples=MNIST_TRAIN,
             quick_samples=4_096),
        Case("relu1024_b256", _WIDE, "relu", "cross_entropy", 256, samples=10_240,
             quick_samples=768),
        Case("predict256_b1024", _MLP, "relu", "cross_entropy", 1024, samples=MNIST_TRAIN,
             quick_samples=10_240, train=False),
    )
}


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped random data: ``n`` float32 rows of 784 values in [0, 1), labels 0-9."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, size=n)
    return X, y


def read_mnist(folder: str | Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST training images (float32 in [0, 1]) and labels from IDX files.

    The files ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` are read raw or with a
    ``.gz`` suffix. Repeats the images when ``n`` exceeds the 60,000 the set holds.
    """
    images = _read_idx(Path(folder), "train-images-idx3-ubyte")
    labels = _read_idx(Path(folder), "train-labels-idx1-ubyte")
    reps = -(-n // len(labels))
    X = np.tile(images.reshape(len(images), -1), (reps, 1))[:n].astype(np.float32) / 255.0
    return X, np.tile(labels, reps)[:n].astype(np.int64)


def _read_idx(folder: Path, stem: str) -> np.ndarray:
    """A uint8 IDX array (the only type MNIST uses) from ``folder/stem`` or ``stem.gz``."""
    path = folder / stem
    opener = open
    if not path.exists():
        path, opener = folder / f"{stem}.gz", gzip.open
    with opener(path, "rb") as handle:
        zero, dtype_code, ndim = struct.unpack(">HBB", handle.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path.name}: not a uint8 IDX file")
        shape = struct.unpack(f">{ndim}I", handle.read(4 * ndim))
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: header says {shape}, file holds {data.size} values")
    return data.reshape(shape)


def initial_state(case: Case, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights for ``case`` (matrixprop's initializer), shared by every framework."""
    net = build_network(case, seed)
    return {name: value.copy() for name, value in net.state_dict().items()}


def build_network(case: Case, seed: int = 0) -> mp.Network:
    """The matrixprop network of ``case``."""
    return mp.MLP(list(case.sizes), activation=case.activation,
                  output_activation=case.output_activation, seed=seed, dtype=case.dtype)


def describe_optimizer(key: str) -> str:
    """The optimizer ``key`` as a call: ``"SGD(lr=0.01, momentum=0.9)"``."""
    kind, params = OPTIMIZERS[key]
    return f"{kind}({', '.join(f'{name}={value}' for name, value in params.items())})"


def make_optimizer(case: Case) -> mp.optimizers.Optimizer:
    """A fresh matrixprop optimizer of ``case`` (see :data:`OPTIMIZERS`)."""
    kind, params = OPTIMIZERS[case.optimizer]
    return getattr(mp.optimizers, kind)(**params)
