"""Gradient checking: backpropagation against central finite differences, in float64."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network

__all__ = ["gradcheck", "GradcheckResult"]


@dataclass
class GradcheckResult:
    """Worst errors per parameter name: ``max|backprop - numeric| / max|numeric|`` (relative)
    and the absolute difference; ``ok`` when every relative error is within ``tolerance``."""

    relative_errors: dict[str, float]
    absolute_errors: dict[str, float]
    tolerance: float
    checked: int

    @property
    def max_error(self) -> float:
        return max(self.relative_errors.values())

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        rows = [f"{'parameter':<20}{'relative error':>16}{'absolute error':>16}"]
        rows += [f"{name:<20}{self.relative_errors[name]:>16.2e}{self.absolute_errors[name]:>16.2e}"
                 for name in self.relative_errors]
        verdict = "OK" if self.ok else "FAILED"
        rows.append(f"{verdict}: worst {self.max_error:.2e} (tolerance {self.tolerance:.0e}, "
                    f"{self.checked} entries checked)")
        return "\n".join(rows)


def gradcheck(net: Network, X, Y, loss=None, *, sample_weight=None, eps: float = 1e-5,
              tolerance: float = 1e-6, max_per_parameter: int | None = None,
              seed: int = 0) -> GradcheckResult:
    """Compare backprop's gradients with central finite differences ``(L(w+e) - L(w-e)) / 2e``.

    The check runs on a float64 copy of ``net`` without dropout. ``max_per_parameter`` limits
    the entries checked per parameter (chosen at random with ``seed``); ``None`` checks all.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a matrixprop Network, got {type(net).__name__}")
    net64 = net.astype(np.float64)
    _, backprop = net64.loss_and_gradients(X, Y, loss, sample_weight, training=False)
    rng = np.random.default_rng(seed)
    relative, absolute, checked = {}, {}, 0
    for name, where in net64.parameter_slices().items():
        flat = np.arange(where.start, where.stop)
        if max_per_parameter is not None and flat.size > max_per_parameter:
            flat = rng.choice(flat, size=max_per_parameter, replace=False)
        analytic = backprop[name].reshape(-1)[flat - where.start]
        numeric = np.array([_central_difference(net64, i, X, Y, loss, sample_weight, eps)
                            for i in flat])
        diff = np.abs(analytic - numeric)
        scale = max(np.max(np.abs(numeric)), np.finfo(np.float64).tiny)
        relative[name] = float(np.max(diff) / scale)
        absolute[name] = float(np.max(diff))
        checked += flat.size
    return GradcheckResult(relative, absolute, tolerance, checked)


def _central_difference(net, index, X, Y, loss, sample_weight, eps) -> float:
    original = net.params[index]
    net.params[index] = original + eps
    plus = net.loss(X, Y, loss, sample_weight)
    net.params[index] = original - eps
    minus = net.loss(X, Y, loss, sample_weight)
    net.params[index] = original
    return (plus - minus) / (2 * eps)
