"""``matrixprop info``: versions, the BLAS libraries and their kernels and threads, and the
compiled engine."""

from __future__ import annotations

import os
import platform
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from .._version import __version__
from ._common import print_json, stderr, stdout

# OpenBLAS settings that pin its kernel to an older one than the CPU could run.
KERNEL_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def info(
    json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
) -> None:
    """Show versions, the BLAS libraries (NumPy's, and SciPy's for the compiled engine), their
    kernels and threads, and whether the compiled engine is installed.

    Warns when OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE pin OpenBLAS to an older kernel.
    """
    from threadpoolctl import threadpool_info

    compiled = _compiled_engine()  # loads SciPy's BLAS when present, so it is listed below
    facts = {
        "matrixprop": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "blas": [{key: pool.get(key) for key in ("internal_api", "version", "architecture",
                                                  "num_threads", "threading_layer", "filepath")}
                 for pool in threadpool_info() if pool.get("user_api") == "blas"],
        "kernel_pins": {name: os.environ[name] for name in KERNEL_PINS if name in os.environ},
        "compiled_engine": compiled,
    }
    if json:
        print_json(facts)
    else:
        _print(facts)
    for name, value in facts["kernel_pins"].items():
        stderr.print(f"[yellow]warning:[/yellow] {name}={value} pins OpenBLAS to an older "
                     f"kernel; unset it (env -u {name} ...) for full speed")


def _compiled_engine() -> dict:
    """Whether the compiled engine can run (``matrixprop[fast]``), with numba's and SciPy's
    versions."""
    from importlib.metadata import version

    from .. import accelerated

    if not accelerated.load_blas():
        return {"available": False, "numba": None, "scipy": None}
    return {"available": True, "numba": version("numba"), "scipy": version("scipy")}


def _print(facts: dict) -> None:
    table = Table(show_header=False, title="matrixprop info")
    table.add_column(style="bold")
    table.add_column()
    for key in ("matrixprop", "numpy", "python", "platform", "cpu_count"):
        table.add_row(key.replace("_", " "), str(facts[key]))
    for pool in facts["blas"]:
        table.add_row("BLAS", f"{pool['internal_api']} {pool['version']}")
        table.add_row("BLAS kernel", str(pool["architecture"]))
        table.add_row("BLAS threads", f"{pool['num_threads']} ({pool['threading_layer']})")
        table.add_row("BLAS library", str(pool["filepath"]))
    if not facts["blas"]:
        table.add_row("BLAS", "not found by threadpoolctl")
    engine = facts["compiled_engine"]
    table.add_row("compiled engine",
                  f"numba {engine['numba']}, on SciPy {engine['scipy']}'s BLAS"
                  if engine["available"] else "not installed: pip install 'matrixprop[fast]'")
    stdout.print(table)
