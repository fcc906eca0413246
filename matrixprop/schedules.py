"""Learning-rate schedules: a factor applied to the optimizer's base rate(s) after each epoch.

Like ``torch.optim.lr_scheduler``, a schedule is stepped once per epoch; the rate for epoch ``e``
(counted from 0) is ``base_lr * factor(e)``. Per-weight rates are all scaled by the same factor.
"""

from __future__ import annotations

import math

from ._validation import non_negative, positive_int

__all__ = ["Schedule", "StepLR", "ExponentialLR", "CosineAnnealingLR", "InverseScalingLR", "get"]


class Schedule:
    """Base class: ``factor(epoch)`` multiplies the base learning rate."""

    name = ""

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def apply(self, optimizer, epoch: int) -> None:
        """Set ``optimizer``'s rate for ``epoch``."""
        optimizer.set_lr_scale(self.factor(epoch))

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({items})"


class StepLR(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs."""

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = non_negative(gamma, "gamma")

    def factor(self, epoch):
        return self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    """Multiply the rate by ``gamma`` every epoch."""

    name = "exponential"

    def __init__(self, gamma: float):
        self.gamma = non_negative(gamma, "gamma")

    def factor(self, epoch):
        return self.gamma**epoch


class CosineAnnealingLR(Schedule):
    """Anneal from the base rate to ``min_factor * base`` along half a cosine over ``T_max``
    epochs (PyTorch's ``eta_min`` is ``min_factor * base_lr`` here, so per-weight rates work)."""

    name = "cosine"

    def __init__(self, T_max: int, min_factor: float = 0.0):
        self.T_max = positive_int(T_max, "T_max")
        self.min_factor = non_negative(min_factor, "min_factor")

    def factor(self, epoch):
        progress = min(epoch, self.T_max) / self.T_max
        return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * progress)) / 2


class InverseScalingLR(Schedule):
    """``base / (epoch + 1) ** power_t`` (scikit-learn's ``"invscaling"`` counts samples instead
    of epochs)."""

    name = "invscaling"

    def __init__(self, power_t: float = 0.5):
        self.power_t = non_negative(power_t, "power_t")

    def factor(self, epoch):
        return 1.0 / (epoch + 1) ** self.power_t


_REGISTRY = {cls.name: cls for cls in (StepLR, ExponentialLR, CosineAnnealingLR, InverseScalingLR)}


def get(spec, **params) -> Schedule:
    """A schedule from a name (``get("step", step_size=10)``) or an instance."""
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str) or spec.lower() not in _REGISTRY:
        raise ValueError(f"unknown schedule {spec!r}; expected one of {', '.join(_REGISTRY)}")
    return _REGISTRY[spec.lower()](**params)
