"""The communicator without a launcher: choosing one, the single-process form, the abort on a
failure, BLAS threads per rank, and which callbacks are rank-0-only. (Training under
``mpiexec`` is tested in test_distributed_mpi.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matrixprop as mp
from matrixprop import distributed
from matrixprop.checkpoint import CheckpointCallback
from matrixprop.distributed import Communicator, get_communicator

ROOT = Path(__file__).resolve().parent.parent


class FakeRanks(Communicator):
    """Rank ``rank`` of ``size`` whose abort is recorded instead of ending the process."""

    def __init__(self, rank: int, size: int):
        self.rank, self.size = rank, size
        self.aborted = None

    def abort(self, code: int = 1):
        self.aborted = code
        raise SystemExit(code)


@pytest.fixture
def no_launcher(monkeypatch):
    for name in distributed.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_single_process_communicator_leaves_data_as_it_is():
    comm = get_communicator("none")
    assert (comm.rank, comm.size) == (0, 1)
    buffer = np.arange(5.0)
    assert comm.allreduce(buffer) is buffer and comm.broadcast(buffer) is buffer
    np.testing.assert_array_equal(buffer, np.arange(5.0))
    assert comm.broadcast_object({"seed": 3}) == {"seed": 3}


def test_auto_without_a_launcher_is_one_process(no_launcher):
    assert get_communicator("auto") is get_communicator("none")


def test_a_communicator_is_used_as_it_is():
    comm = FakeRanks(1, 4)
    assert get_communicator(comm) is comm


@pytest.mark.parametrize("spec, error", [("mpich", ValueError), ("", ValueError),
                                         (2, TypeError), (None, TypeError)])
def test_unknown_specs_are_refused(spec, error):
    with pytest.raises(error, match="'auto', 'mpi', 'none' or a Communicator"):
        get_communicator(spec)


def test_a_launch_of_several_ranks_without_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    distributed._world.cache_clear()
    with pytest.raises(ImportError, match=r"PMI_SIZE.*matrixprop\[mpi\]"):
        get_communicator("auto")


def test_a_launch_of_several_ranks_that_mpi_sees_as_one_is_refused(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "_world", lambda: FakeRanks(0, 1))
    with pytest.raises(RuntimeError, match="started 2 processes but MPI sees each as a job"):
        get_communicator("auto")


def test_one_process_imports_no_mpi():
    code = ("import sys, numpy as np, matrixprop as mp\n"
            "net = mp.MLP([2, 3, 1], seed=0)\n"
            "mp.fit(net, np.eye(2), np.ones(2), epochs=1)\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'\n")
    env = {key: value for key, value in os.environ.items()
           if key not in distributed.LAUNCHER_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def _fails(*, distributed):
    raise ValueError("bad input on this rank")


def test_a_failure_among_several_ranks_is_reported_and_ends_the_job(capsys):
    comm = FakeRanks(2, 3)
    with pytest.raises(SystemExit):
        distributed.abort_on_failure(_fails)(distributed=comm)
    assert comm.aborted == 1
    err = capsys.readouterr().err
    assert "rank 2 of 3 failed" in err and "ValueError: bad input on this rank" in err


def test_a_failure_in_one_process_is_an_ordinary_exception():
    with pytest.raises(ValueError, match="bad input on this rank"):
        distributed.abort_on_failure(_fails)(distributed="none")


def test_fit_reports_a_failure_on_one_of_several_ranks(capsys):
    comm = FakeRanks(1, 2)
    net = mp.MLP([2, 3, 1], seed=0)
    with pytest.raises(SystemExit):
        mp.fit(net, np.eye(2), np.ones(2), epochs=0, distributed=comm)
    assert comm.aborted == 1
    assert "rank 1 of 2 failed" in capsys.readouterr().err


@pytest.mark.parametrize("own, machine, threads", [
    (range(8), [range(8)], 8),  # one rank alone
    (range(8), [range(8)] * 3, 2),  # three unbound ranks share 8 cores
    (range(2), [range(2)] * 16, 1),  # more ranks than cores
    (range(2, 4), [range(0, 2), range(2, 4), range(4, 6)], 2),  # bound to 2 cores each
    (range(4), [range(4), range(4, 8)], 4),  # bound to 4 cores each
    ({5}, [{4}, {5}], 1),  # bound to one core each
    (range(16), [range(16)] * 8, 2),  # a cgroup of 16 cores for 8 ranks (of a larger machine)
])
def test_blas_threads_are_the_ranks_share_of_the_cores(own, machine, threads):
    assert distributed.cores_per_rank(set(own), [set(cpus) for cpus in machine]) == threads


class _Machine(Communicator):
    def cpu_sets_on_this_machine(self) -> list[set[int]]:
        return [distributed.cpu_set()] * 2


def test_blas_threads_follow_the_ranks_on_the_machine(monkeypatch):
    for name in distributed.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    cores = len(distributed.cpu_set())
    assert distributed.blas_threads_per_rank(_Machine()) == max(1, cores // 2)


def test_blas_threads_set_by_the_user_are_left_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert distributed.blas_threads_per_rank(_Machine()) is None


def test_printing_and_writing_callbacks_are_rank_0_only(tmp_path):
    assert mp.ProgressBar().root_only and mp.callbacks.LossLogger().root_only
    assert CheckpointCallback(tmp_path / "c.safetensors", seed=0).root_only
    assert not mp.Callback().root_only and not mp.EarlyStopping().root_only
