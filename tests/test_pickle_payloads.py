"""Model files, checkpoints and data files are data, never code: a pickle disguised as any of them
runs nothing, through the library or any command, and is refused with a ValueError."""

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from _cli import assert_clean_failure, call_main, run_cli

import matrixprop as mp
from matrixprop.checkpoint import load_checkpoint
from matrixprop.data import DataError, load_dataset, read_npz

PACKAGE = Path(mp.__file__).parent


class _Trap:
    """Unpickling this object creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def payload(tmp_path):
    """(pickle bytes that would create ``marker``, marker)."""
    marker = tmp_path / "unpickled"
    data = pickle.dumps({"layers.0.weight": _Trap(marker)})
    pickle.loads(data)  # the trap works: unpickling it runs code
    assert marker.exists()
    marker.unlink()
    return data, marker


def test_library_loaders_run_no_code(tmp_path, payload):
    data, marker = payload
    path = tmp_path / "evil.safetensors"
    path.write_bytes(data)
    for loader in (mp.load, load_checkpoint):
        with pytest.raises(ValueError, match="evil.safetensors"):
            loader(path)
    assert not marker.exists()


def test_resume_from_a_pickled_checkpoint_runs_no_code(tmp_path, payload):
    data, marker = payload
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.safetensors").write_bytes(data)
    result = run_cli("train", "--out", out, "--resume")
    assert_clean_failure(result, 1, "checkpoint.safetensors", "not a safetensors file")
    assert not marker.exists()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors"]


@pytest.mark.parametrize("command", [
    ["evaluate", "{model}"], ["predict", "{model}", "{samples}"], ["gradcheck", "{model}"],
    ["explain", "--model", "{model}"], ["export", "{model}", "--out", "{tmp}/m.onnx"],
])
def test_every_command_that_reads_a_model_runs_no_code(tmp_path, payload, command):
    data, marker = payload
    model = tmp_path / "model.safetensors"
    model.write_bytes(data)
    samples = tmp_path / "x.csv"
    np.savetxt(samples, np.zeros((2, 4)), delimiter=",")
    args = [part.format(model=model, samples=samples, tmp=tmp_path) for part in command]
    assert_clean_failure(call_main(*args), 1, "model.safetensors")
    assert not marker.exists()


def test_npz_with_a_pickled_object_array_runs_no_code(tmp_path, payload):
    _, marker = payload
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([[_Trap(marker)]], dtype=object), y=np.zeros(1))
    for reader in (read_npz, load_dataset):
        with pytest.raises(DataError, match="holds Python objects"):
            reader(path)
    assert_clean_failure(call_main("train", "--dataset", path, "--out", tmp_path / "run"), 1,
                         "objects.npz", "never unpickled")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_the_package_never_unpickles():
    """No module imports pickle (or a loader built on it) to read files."""
    unpickling = re.compile(r"\bimport pickle\b|\bpickle\.loads?\(|\bjoblib\.load\(|"
                            r"\btorch\.load\(|\bnp\.load\(|\bnumpy\.load\(|allow_pickle=True")
    offenders = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if unpickling.search(line)]
    assert offenders == []
