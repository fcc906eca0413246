"""What a benchmark ran on: versions, the CPU, the BLAS libraries, their kernels and threads."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
from pathlib import Path

import numpy as np
import threadpoolctl

__all__ = ["PINNING_VARIABLES", "busy_warning", "describe", "load_average", "markdown",
           "pinned_warning", "try_import"]

PINNING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
BUSY_LOAD = 0.5  # a 1-minute load average above this means other processes use the CPU


def try_import(name: str):
    """The module ``name``, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _owner(filepath: str) -> str:
    """The package folder a shared library ships in (``numpy.libs``, ``torch``), else its name."""
    parts = Path(filepath).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts[:-1]:
            return parts[parts.index(marker) + 1]
    return parts[-1]


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def describe(torch_threads: int | None, load: float | None) -> dict:
    """The environment as plain data (call it after the frameworks are imported and the thread
    limits set, so every loaded BLAS and OpenMP library is listed as it will run). ``load`` is
    the 1-minute load average taken before the benchmark started."""
    libraries = [
        {**{key: info.get(key) for key in ("user_api", "internal_api", "version",
                                           "architecture", "threading_layer", "num_threads")},
         "package": _owner(info["filepath"])}
        for info in threadpoolctl.threadpool_info()
    ]
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "matrixprop": _version("matrixprop"),
        "torch": _version("torch"),
        "scikit-learn": _version("scikit-learn"),
        "jax": _version("jax"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": load,
        "torch_threads": torch_threads,
        "blas": libraries,
        "pinned": {name: os.environ.get(name) for name in PINNING_VARIABLES},
    }


def pinned_warning(env: dict) -> str | None:
    """A loud warning when OpenBLAS's kernel is pinned by the environment, else None."""
    pinned = {name: value for name, value in env["pinned"].items() if value is not None}
    if not pinned:
        return None
    settings = ", ".join(f"{name}={value}" for name, value in pinned.items())
    unset = " ".join(f"-u {name}" for name in PINNING_VARIABLES)
    return (f"WARNING: {settings} is set: OpenBLAS runs a pinned, older kernel and these "
            f"figures are NOT representative of a user's machine. Rerun with "
            f"`env {unset} python benchmarks/train_speed.py`.")


def busy_warning(env: dict) -> str | None:
    """A warning when other processes kept the CPU busy before the run, else None.

    With as many threads as cores, a thread that another process preempts stalls every
    synchronisation: PyTorch's steps then take a scheduler time slice instead of microseconds.
    """
    load = env["load_average"]
    if load is None or load < BUSY_LOAD:
        return None
    return (f"WARNING: the 1-minute load average was {load:.2f} before the run: other processes "
            "share the CPU and the figures (PyTorch's above all) are unreliable. Rerun on an "
            "idle machine.")


def markdown(env: dict) -> list[str]:
    """The environment as Markdown list lines."""
    versions = ", ".join(f"{name} {env[name] or 'absent'}"
                         for name in ("python", "numpy", "matrixprop", "torch", "scikit-learn",
                                      "jax"))
    lines = [f"- {versions}",
             f"- CPU: {env['cpu']}, {env['cores']} cores, 1-minute load average before the run "
             f"{_load(env['load_average'])}; torch threads: {env['torch_threads']}"]
    for lib in env["blas"]:
        name = " ".join(filter(None, (lib["internal_api"], lib["version"])))
        lines.append(f"- {lib['user_api']}: {name} ({lib['package']}), kernel "
                     f"{lib['architecture'] or 'n/a'}, threads {lib['num_threads']}")
    pinned = ", ".join(f"{name}={value if value is not None else 'unset'}"
                       for name, value in env["pinned"].items())
    lines.append(f"- {pinned}")
    return lines


def _load(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
