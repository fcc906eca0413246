"""The fuzz targets: each takes a file's bytes, hands them to one reader, and lets through only
the errors that reader documents (anything else escaping is a finding).

Used by ``fuzz/run.py`` (coverage-guided, with atheris); the hypothesis tests in
``tests/test_fuzz_*.py`` cover the same readers with structured inputs.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

import matrixprop as mp
from matrixprop.checkpoint import load_checkpoint, save_checkpoint
from matrixprop.data import DataError, read_csv, read_idx, read_npz, write_idx

_FOLDER = Path(tempfile.mkdtemp(prefix="matrixprop-fuzz-"))


def _through_file(reader: Callable, suffix: str, allowed: tuple[type[BaseException], ...]
                  ) -> Callable[[bytes], None]:
    """A target: write the bytes to a file, read it with ``reader``, ignore ``allowed``."""
    path = _FOLDER / f"input{suffix}"

    def target(data: bytes) -> None:
        path.write_bytes(data)
        try:
            reader(path)
        except allowed:
            pass
    return target


TARGETS: dict[str, Callable[[bytes], None]] = {
    "idx": _through_file(read_idx, ".idx", (DataError,)),
    "csv": _through_file(read_csv, ".csv", (DataError,)),
    "npz": _through_file(read_npz, ".npz", (DataError,)),
    "model": _through_file(mp.load, ".safetensors", (ValueError,)),
    "checkpoint": _through_file(load_checkpoint, ".safetensors", (ValueError,)),
}


def seeds(name: str) -> list[bytes]:
    """Valid files for target ``name``: where the fuzzer starts mutating."""
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(dir=_FOLDER))
    if name == "idx":
        write_idx(folder / "a.idx", rng.integers(0, 255, (3, 4, 4)).astype(np.uint8))
        write_idx(folder / "b.idx.gz", rng.normal(size=(5, 2)))
        write_idx(folder / "c.idx", np.arange(7, dtype=np.int16))
        return [p.read_bytes() for p in sorted(folder.iterdir())]
    if name == "csv":
        return [b"x1,x2,y\n0.5,1,0\n-2,3e2,1\n", b"1;2;3\n4;5;6\n", b"\xef\xbb\xbf1,2\n3,4\n"]
    if name == "npz":
        found = []
        for save, arrays in ((np.savez, {"X": rng.normal(size=(4, 3)), "y": np.arange(4)}),
                             (np.savez_compressed, {"X": np.ones((2, 2, 2), np.uint8),
                                                    "y": np.zeros(2), "X_test": np.ones((1, 2, 2)),
                                                    "y_test": np.zeros(1)})):
            buffer = io.BytesIO()
            save(buffer, **arrays)
            found.append(buffer.getvalue())
        return found
    net = mp.MLP([3, 4, 2], "tanh", "softmax", seed=0, dtype="float64")
    if name == "model":
        mp.save(net, folder / "m.safetensors", metadata={"loss": {"name": "cross_entropy"}})
        return [(folder / "m.safetensors").read_bytes()]
    optimizer = mp.optimizers.Adam()
    optimizer.setup(net)
    history = mp.History()
    history.append(0, {"loss": 1.0, "accuracy": 0.5})
    save_checkpoint(folder / "c.safetensors", net, optimizer, epoch=1, seed=0, history=history)
    return [(folder / "c.safetensors").read_bytes()]


def cleanup() -> None:
    """Remove the scratch folder."""
    shutil.rmtree(_FOLDER, ignore_errors=True)
