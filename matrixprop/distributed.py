"""Data-parallel training across processes: the communicator.

The gradient of a batch is a sum over its samples, so training on several processes ("ranks")
is exact: every rank computes the partial sum over its shard of the global batch, one
all-reduce adds the partial sums, and every rank applies the same update to the same weights.
:func:`matrixprop.fit` does this when it is given a communicator of more than one rank; with
``distributed="auto"`` (the default) it takes one when the script was started by an MPI launcher
with more than one rank::

    mpiexec -n 4 python train.py            # a laptop or one server
    srun --mpi=pmi2 -n 64 python train.py   # Slurm

A :class:`Communicator` is one process alone (every collective leaves its data as it is);
:class:`MPICommunicator` spans the ranks of an MPI job through ``mpi4py``, which is imported
only when MPI is asked for, so NumPy stays the only dependency of everything else.

Two behaviours of a job of several ranks differ from a lone process:

* BLAS threads: when the world communicator is first created, each rank's BLAS library is
  limited to its share of the machine's cores (:func:`cores_per_rank`: the cores of the
  machine's ranks divided by their number), with ``threadpoolctl``, unless one of
  :data:`THREAD_VARIABLES` is set. Without ``threadpoolctl`` set the thread count
  in the environment before NumPy loads (``mpiexec -genv OMP_NUM_THREADS 1 ...``).
* Failures: an exception on one rank would leave the others waiting forever in their next
  collective. :func:`abort_on_failure` (which wraps :func:`matrixprop.fit`) writes the rank's
  traceback to standard error and ends the whole job with ``MPI_Abort``: the one place where the
  library writes to a stream, since the process ends before anyone could read a return value.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

import numpy as np

__all__ = [
    "LAUNCHER_VARIABLES",
    "THREAD_VARIABLES",
    "Communicator",
    "MPICommunicator",
    "abort_on_failure",
    "blas_threads_per_rank",
    "cores_per_rank",
    "cpu_set",
    "get_communicator",
    "Shards",
]

# Variables by which MPI launchers tell each process how many ranks the job has: MPICH's and
# Intel MPI's Hydra (and Slurm's PMI-2), Open MPI, MVAPICH, and Slurm's srun.
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE",
                      "SLURM_STEP_NUM_TASKS")
# Any of these set means the user chose the BLAS threads: they are left as they are.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS")

# MPI_Abort kills every process at once: output still in the launcher's pipes would be lost
_FORWARD_SECONDS = 0.5

_INSTALL_HINT = "pip install 'matrixprop[mpi]' (mpi4py and the mpich wheel)"


class Communicator:
    """One process alone: rank 0 of 1, and every collective leaves its data as it is.

    Subclasses span several processes; :func:`matrixprop.fit` uses only the methods below.
    """

    rank: int = 0
    size: int = 1

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        """Replace ``buffer`` on every rank by its sum over the ranks (in place); return it."""
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``buffer`` on every rank with rank ``root``'s (in place); return it."""
        return buffer

    def broadcast_object(self, value, root: int = 0):
        """Rank ``root``'s ``value`` (any picklable object), on every rank."""
        return value

    def abort(self, code: int = 1) -> NoReturn:
        """End every process of the job with exit status ``code``."""
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MPICommunicator(Communicator):
    """The ranks of an MPI communicator, through ``mpi4py``.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default: ``MPI.COMM_WORLD``, every process of the job.
    """

    def __init__(self, comm=None):
        MPI = _import_mpi()
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._in_place, self._sum = MPI.IN_PLACE, MPI.SUM

    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        self.comm.Allreduce(self._in_place, buffer, op=self._sum)
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        self.comm.Bcast(buffer, root=root)
        return buffer

    def broadcast_object(self, value, root: int = 0):
        return self.comm.bcast(value, root=root)

    def abort(self, code: int = 1) -> NoReturn:
        self.comm.Abort(code)
        os._exit(code)  # MPICH's Abort can return before the launcher has ended this process

    def cpu_sets_on_this_machine(self) -> list[set[int]]:
        """The CPU sets of the communicator's ranks that run on this machine, this one's
        included (a collective call)."""
        MPI = _import_mpi()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            return local.allgather(cpu_set())
        finally:
            local.Free()


def get_communicator(spec: str | Communicator = "auto") -> Communicator:
    """The communicator that ``spec`` names.

    Parameters
    ----------
    spec : "auto", "mpi", "none" or Communicator
        ``"none"``: this process alone. ``"mpi"``: every process of the MPI job (even one).
        ``"auto"``: the MPI job when an MPI launcher started this process with more than one
        rank (one of :data:`LAUNCHER_VARIABLES` says so, or ``mpi4py`` is already initialized
        with more than one), else this process alone. A communicator is returned as it is.

    Raises
    ------
    ImportError
        MPI is asked for (or the launcher started several ranks) but ``mpi4py`` is missing.
    RuntimeError
        The launcher started several processes but MPI sees each as a job of one.
    """
    if isinstance(spec, Communicator):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"distributed must be 'auto', 'mpi', 'none' or a Communicator, "
                        f"got {type(spec).__name__}")
    if spec == "none":
        return _SINGLE
    if spec == "mpi":
        return _world()
    if spec == "auto":
        launched = _launched_ranks()
        if launched == 1 and _initialized_world_size() == 1:
            return _SINGLE
        world = _world()
        if world.size == 1:
            raise RuntimeError(
                f"the launcher started {launched} processes but MPI sees each as a job of one: "
                "launch with the mpiexec of the MPI library that mpi4py uses, or with "
                "srun --mpi=pmi2 (Slurm); distributed='none' trains each process alone")
        return world
    raise ValueError(f"distributed must be 'auto', 'mpi', 'none' or a Communicator, got {spec!r}")


def abort_on_failure(function: Callable) -> Callable:
    """Run ``function`` as one rank of a job; ``function`` takes a ``distributed`` keyword.

    The wrapper resolves ``distributed`` with :func:`get_communicator` and passes the
    communicator on. With more than one rank, an exception escaping ``function`` is written to
    standard error with the rank's number and ends the whole job (:meth:`Communicator.abort`,
    exit status 1) instead of leaving the other ranks waiting in a collective.
    """
    default = inspect.signature(function).parameters["distributed"].default

    @functools.wraps(function)
    def run(*args, distributed=default, **kwargs):
        comm = get_communicator(distributed)
        if comm.size == 1:
            return function(*args, distributed=comm, **kwargs)
        try:
            return function(*args, distributed=comm, **kwargs)
        except BaseException as exc:
            sys.stderr.write(f"matrixprop: rank {comm.rank} of {comm.size} failed, ending the "
                             f"job: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            sys.stderr.flush()
            time.sleep(_FORWARD_SECONDS)  # the launcher forwards the message before the abort
            comm.abort(1)

    return run


class Shards:
    """One rank's part of every batch in data-parallel training over ``comm``.

    Every rank holds the whole training set and the same weights, and draws the same global
    batch order from the shared seed. Of each global batch of ``B`` rows, rank ``r`` of ``P``
    takes the contiguous rows ``[r B // P, (r + 1) B // P)`` (none when ``B < P`` leaves it
    without a row). Its loss is normalized by the GLOBAL batch's count (its size, or its sum of
    sample weights), so the rank's gradient is its exact share of the global batch's gradient,
    and their sum over the ranks, one all-reduce, is that gradient. L2, gradient hooks,
    clipping and the optimizer step then act on the same numbers everywhere. The batch loss and
    hit count are summed the same way (a second, two-number all-reduce), so the epoch metrics
    are those of the whole training set on every rank. With dropout each rank draws its masks
    from its own stream, so results match a single process in distribution, not bit for bit.
    """

    def __init__(self, comm: Communicator):
        self.comm = comm
        self._metrics = np.zeros(2)

    def agree(self, net, seed: int, n: int, batch_size: int) -> int:
        """Broadcast rank 0's weights, check that every rank trains on as many samples in
        batches as large, and return rank 0's shuffling seed."""
        comm = self.comm
        comm.broadcast(net.params)
        seed0, n0, batch0 = comm.broadcast_object((seed, n, batch_size))
        if (n0, batch0) != (n, batch_size):
            raise ValueError(
                f"rank {comm.rank} has {n} training samples in batches of {batch_size}, rank 0 "
                f"has {n0} in batches of {batch0}: every rank must pass the same training set "
                "and batch_size")
        return seed0

    def dropout_rng(self, net) -> np.random.Generator:
        """An independent stream of dropout masks on every rank."""
        return np.random.default_rng([self.comm.rank, int(net.rng.integers(2**63))])

    def rows(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` rows."""
        rank, size = self.comm.rank, self.comm.size
        return slice(rank * n // size, (rank + 1) * n // size)

    def part(self, rows):
        """This rank's rows of the global batch ``rows`` (a slice or an index array)."""
        if isinstance(rows, slice):
            mine = self.rows(rows.stop - rows.start)
            return slice(rows.start + mine.start, rows.start + mine.stop)
        return rows[self.rows(rows.shape[0])]

    def allreduce(self, grads: np.ndarray) -> None:
        """Sum the ranks' gradients, in place."""
        self.comm.allreduce(grads)

    def reduce_metrics(self, value: float, hits: int) -> tuple[float, int]:
        """The sums over the ranks of a batch's loss shares and hit counts."""
        self._metrics[:] = value, hits
        self.comm.allreduce(self._metrics)
        return float(self._metrics[0]), int(self._metrics[1])


def blas_threads_per_rank(comm: MPICommunicator) -> int | None:
    """The BLAS threads a rank of ``comm`` should use (see :func:`cores_per_rank`); None when
    one of :data:`THREAD_VARIABLES` is set."""
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return None
    return cores_per_rank(cpu_set(), comm.cpu_sets_on_this_machine())


def cores_per_rank(own: set[int], machine: list[set[int]]) -> int:
    """The cores a rank may use without crowding the others on its machine: the CPUs of all
    the machine's ranks (``machine``, one set per rank) divided by their number, and no more
    than the rank's own CPU set ``own`` (a launcher that binds ranks to cores has already
    shared them out); at least 1."""
    shared = len(set().union(*machine)) // len(machine)
    return max(1, min(len(own), shared))


def cpu_set() -> set[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


_SINGLE = Communicator()


@functools.cache
def _world() -> MPICommunicator:
    """The communicator of every process of the job, created once, with the BLAS threads set."""
    comm = MPICommunicator()
    threads = blas_threads_per_rank(comm)
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return comm  # documented: set a THREAD_VARIABLE before NumPy loads
        threadpool_limits(limits=threads, user_api="blas")
    return comm


def _launched_ranks() -> int:
    """The job size that an MPI launcher announced in the environment (1 when none did)."""
    sizes = [os.environ.get(name, "") for name in LAUNCHER_VARIABLES]
    return max((int(size) for size in sizes if size.isdigit()), default=1)


def _initialized_world_size() -> int:
    """The size of MPI_COMM_WORLD when the program has already initialized mpi4py, else 1."""
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is None or not MPI.Is_initialized() or MPI.Is_finalized():
        return 1
    return MPI.COMM_WORLD.Get_size()


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        launched = {name: os.environ[name] for name in LAUNCHER_VARIABLES if name in os.environ}
        where = f" (the launcher set {launched})" if launched else ""
        raise ImportError(f"distributed training needs mpi4py{where}: {_INSTALL_HINT}") from exc
    return MPI
