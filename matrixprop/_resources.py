"""How much memory training a network takes, and how much the machine has left.

The command refuses a run that cannot fit before it allocates anything: an absurd ``--layers``
would otherwise fail deep inside NumPy, or get the process killed by the kernel.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layers import Dense, LayerWorkspace
from .network import MLP

__all__ = ["MemoryEstimate", "estimate", "available_memory", "format_bytes"]

_NO_LIMIT = 2**60  # cgroup v1 writes a huge number for "unlimited"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per part of a training run, largest first in :meth:`describe`."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def largest(self) -> str:
        return max(self.parts, key=self.parts.__getitem__)

    def describe(self) -> str:
        """``"about 150.2 GiB (parameters 37.5 GiB, gradients 37.5 GiB, ...)"``."""
        shown = ", ".join(f"{name} {format_bytes(size)}" for name, size in
                          sorted(self.parts.items(), key=lambda item: -item[1]) if size)
        return f"about {format_bytes(self.total)} ({shown})"


def estimate(sizes: Sequence[int], *, activation: str, output_activation: str, dtype,
             dropout: float = 0.0, optimizer=None, batch_rows: int = 0,
             predict_rows: int = 0, data_bytes: int = 0) -> MemoryEstimate:
    """The memory a network of widths ``sizes`` needs, without building it.

    Parameters
    ----------
    sizes, activation, output_activation, dtype, dropout :
        As for :class:`matrixprop.MLP`.
    optimizer : Optimizer, optional
        Its state buffers and scratch array (one value per parameter each) are counted.
    batch_rows : int
        Rows of a training batch: its gathered inputs and targets, and the per-layer workspaces
        of a full and a last partial batch.
    predict_rows : int
        Rows predicted at once (validation and test): their per-layer workspaces.
    data_bytes : int
        The copies of the data that training makes.
    """
    itemsize = np.dtype(dtype).itemsize
    layers = _layers(sizes, activation, output_activation, dropout)
    n_params = sum(layer.weight_size + layer.bias_size for layer in layers)
    per_row = sum(_row_bytes(layer, dtype, output=k == len(layers) - 1)
                  for k, layer in enumerate(layers))
    gathered = batch_rows * (sizes[0] + sizes[-1]) * itemsize
    parts = {
        "parameters": n_params * itemsize,
        "gradients": n_params * itemsize,
        "optimizer state": _optimizer_arrays(optimizer) * n_params * itemsize,
        "batch workspaces": 2 * batch_rows * per_row + gathered,
        "prediction workspaces": predict_rows * per_row,
        "data": data_bytes,
    }
    return MemoryEstimate(parts)


def _layers(sizes, activation, output_activation, dropout) -> list[Dense]:
    """The layers of ``MLP(sizes, ...)``, which hold no arrays until a network binds them."""
    last = len(sizes) - 2
    return [Dense(sizes[i], sizes[i + 1], output_activation if i == last else activation,
                  dropout=0.0 if i == last else dropout) for i in range(last + 1)]


def _row_bytes(layer: Dense, dtype, output: bool) -> int:
    """Bytes of one row of the layer's workspace (whichever buffers its activation needs; the
    output layer keeps its logits)."""
    arrays = {id(value): value for value in vars(LayerWorkspace(layer, 1, dtype, keep_z=output))
              .values() if isinstance(value, np.ndarray)}
    return sum(array.nbytes for array in arrays.values())


def _optimizer_arrays(optimizer) -> int:
    """How many parameter-sized arrays ``optimizer`` keeps: its state buffers and a scratch."""
    if optimizer is None:
        return 0
    probe = copy.copy(optimizer)  # set up on a one-weight network: the count, not the size
    probe.setup(MLP([1, 1]))
    return 1 + sum(isinstance(value, np.ndarray) for value in probe.state_dict().values())


def available_memory() -> int | None:
    """Bytes that this process may still allocate: the kernel's ``MemAvailable``, lowered by a
    control group's limit (containers); None where neither can be read."""
    known = [value for value in (_meminfo_available(), _cgroup_available()) if value is not None]
    if not known:
        known = [value for value in (_sysconf_available(),) if value is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            text = Path(limit).read_text().strip()
            if text == "max" or int(text) >= _NO_LIMIT:
                return None
            return max(int(text) - int(Path(usage).read_text().strip()), 0)
        except (OSError, ValueError):
            continue
    return None


def _sysconf_available() -> int | None:
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def format_bytes(size: int) -> str:
    """``1536`` as ``"1.5 KiB"``."""
    if size < 1024:
        return f"{size} B"
    power = min(int(math.log(size, 1024)), 4)
    return f"{size / 1024**power:.1f} {['B', 'KiB', 'MiB', 'GiB', 'TiB'][power]}"
