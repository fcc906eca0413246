"""Data-parallel training under ``mpiexec``: 2 and 3 ranks end where one process ends, only
rank 0 prints and writes, BLAS threads are shared out, and a failing rank ends the job.

The tests launch the ``mpiexec`` of the running Python's environment (the ``mpi`` extra's
``mpich`` wheel), each with a timeout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from matrixprop.distributed import THREAD_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load("train_cases")


def launch(n: int, *args, cwd: Path | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    """``mpiexec -n N python ARGS`` with this interpreter and no BLAS thread setting (N = 1:
    ``python ARGS``, no launcher)."""
    assert MPIEXEC.exists(), f"{MPIEXEC} is missing: pip install -e '.[mpi]'"
    env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    launcher = [str(MPIEXEC), "-n", str(n)] if n > 1 else []
    return subprocess.run([*launcher, sys.executable, *map(str, args)], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def parallel(request, tmp_path_factory):
    """The ranks' results of every case (see tests/mpi_scripts/train_cases.py), and stderr."""
    out = tmp_path_factory.mktemp("mpi") / "results.npz"
    result = launch(request.param, SCRIPTS / "train_cases.py", out)
    assert result.returncode == 0, result.stderr
    with np.load(out) as results:
        return request.param, dict(results), result.stderr


@pytest.fixture(scope="module")
def single():
    """Every case trained by one process."""
    return {name: cases.train(name, "none") for name in cases.CASES}


def test_ranks_end_at_the_weights_of_one_process(parallel, single):
    _, results, _ = parallel
    for name, (net, history, test_accuracy) in single.items():
        difference = np.abs(results[f"{name}/params"] - net.params).max()
        assert difference <= 1e-9, (name, difference)
        np.testing.assert_allclose(results[f"{name}/loss"], history["loss"], rtol=1e-9,
                                   err_msg=name)
        np.testing.assert_allclose(results[f"{name}/val_loss"], history["val_loss"], rtol=1e-9,
                                   err_msg=name)
        for key in ("accuracy", "val_accuracy"):
            if key in history:
                np.testing.assert_array_equal(results[f"{name}/{key}"], history[key], name)
        assert results[f"{name}/test_accuracy"] == test_accuracy, name


def test_every_rank_holds_the_same_weights(parallel):
    _, results, _ = parallel
    for name in [*cases.CASES, cases.DROPOUT_CASE]:
        assert results[f"{name}/spread"] == 0.0, name


def test_only_rank_0_runs_root_only_callbacks(parallel):
    n, results, stderr = parallel
    logged = re.findall(r"^epoch \d/\d  loss=", stderr, flags=re.MULTILINE)
    assert len(logged) == len(cases.CASES) * cases.EPOCHS, stderr
    bars = re.findall(rf"^epoch {cases.EPOCHS}/{cases.EPOCHS} ━", stderr, flags=re.MULTILINE)
    assert len(bars) == 1, stderr
    assert list(results["callback_epochs"]) == [len(cases.CASES) * cases.EPOCHS] * n


def test_blas_threads_are_the_cores_shared_by_the_ranks(parallel):
    n, results, _ = parallel
    cores = len(os.sched_getaffinity(0))
    assert list(results["threads"]) == [max(1, cores // n)] * n


@pytest.mark.parametrize("how, message", [
    ("callback", "RuntimeError: rank 1 failed on purpose"),
    ("data", "ValueError: rank 1 has 60 training samples in batches of 8, rank 0 has 64"),
])
def test_a_failing_rank_ends_the_job_promptly_with_its_message(how, message):
    started = time.perf_counter()
    result = launch(2, SCRIPTS / "failing_rank.py", how, timeout=60)
    seconds = time.perf_counter() - started
    assert result.returncode != 0
    assert seconds < 20, seconds
    assert "rank 1 of 2 failed" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_the_command_line_under_mpiexec_writes_one_run_as_one_process_does(tmp_path):
    options = ["-m", "matrixprop", "train", "--epochs", "2", "--dtype", "float64",
               "--batch-size", "50", "--json"]
    runs = {}
    for ranks in (1, 2):
        folder = tmp_path / f"ranks{ranks}"
        folder.mkdir()
        result = launch(ranks, *options, cwd=folder)
        assert result.returncode == 0, result.stderr
        runs[ranks] = json.loads(result.stdout)  # one document: one rank printed
        outputs = list((folder / "runs").iterdir())
        assert len(outputs) == 1, outputs
        written = {path.name for path in outputs[0].iterdir()}
        assert {"model.safetensors", "metrics.json", "history.csv"} <= written
    assert runs[2]["test_accuracy"] == runs[1]["test_accuracy"]
    for key, value in runs[1]["final"].items():
        assert runs[2]["final"][key] == pytest.approx(value, rel=1e-9), key
