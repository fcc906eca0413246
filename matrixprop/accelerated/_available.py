"""Whether the compiled engine can run here, and the BLAS its kernels call."""

from __future__ import annotations

import importlib.util

__all__ = ["available", "load_blas"]


def available() -> bool:
    """Whether numba is installed, and SciPy, whose BLAS the kernels call."""
    return all(importlib.util.find_spec(name) is not None for name in ("numba", "scipy"))


def load_blas() -> bool:
    """Load SciPy's BLAS, the one the kernels call, so that threadpoolctl sees (and limits) it
    before any kernel runs; returns whether the compiled engine is available."""
    if not available():
        return False
    import scipy.linalg.cython_blas  # noqa: F401

    return True
