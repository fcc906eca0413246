"""The settings of a playground run, checked as they arrive from the page.

The page sends its form as JSON; numbers may come as strings (a text field's content), so each
field is converted here and any bad value is refused with a ``ValueError`` whose message names
the field, what it must be and what it got. The page shows that message as it is.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from .. import activations, losses, optimizers
from .datasets import DATASETS, REGRESSION

__all__ = ["MAX_LAYERS", "MAX_NEURONS", "Config", "choices"]

MAX_LAYERS = 6  # hidden layers
MAX_NEURONS = 16  # per hidden layer
MAX_MULTIPLIER = 100.0
HIDDEN_ACTIVATIONS = tuple(name for name in activations.names()
                           if not activations.get(name).output_only)


@dataclass(frozen=True)
class Config:
    """One run's settings (the defaults are the page's first run).

    ``hidden`` lists the widths of the hidden layers; ``lr_multipliers`` holds one factor per
    layer (hidden layers, then the output layer): layer ``k`` learns with ``lr * m_k``, the
    article's per-weight rate ``alpha_w`` given layer by layer. ``batch_size`` None means the
    whole training set (batch gradient descent).
    """

    dataset: str = "circles"
    noise: float = 0.1
    test_fraction: float = 0.3
    hidden: tuple[int, ...] = (4, 4)
    activation: str = "tanh"
    output_activation: str = "sigmoid"
    loss: str = "binary_cross_entropy"
    optimizer: str = "adam"
    lr: float = 0.03
    lr_multipliers: tuple[float, ...] = (1.0, 1.0, 1.0)
    batch_size: int | None = 16
    l2: float = 0.0
    seed: int = 0

    @classmethod
    def from_dict(cls, data: Mapping) -> Config:
        """Check ``data`` and build a Config.

        Missing keys take the defaults; missing ``lr_multipliers`` are all 1.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"the settings must be a JSON object, got {type(data).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))}")
        raw = {**asdict(cls()), **data}
        hidden = _int_list(raw["hidden"], "hidden", 1, MAX_NEURONS, max_items=MAX_LAYERS)
        if "lr_multipliers" not in data:  # one plain rate per layer
            raw["lr_multipliers"] = [1.0] * (len(hidden) + 1)
        config = cls(
            dataset=_choice(raw["dataset"], "dataset", tuple(DATASETS)),
            noise=_number(raw["noise"], "noise", 0.0, 1.0),
            test_fraction=_number(raw["test_fraction"], "test_fraction", 0.1, 0.9),
            hidden=hidden,
            activation=_choice(raw["activation"], "activation", HIDDEN_ACTIVATIONS),
            output_activation=_choice(raw["output_activation"], "output_activation",
                                      tuple(activations.names())),
            loss=_choice(raw["loss"], "loss", tuple(losses.names())),
            optimizer=_choice(raw["optimizer"], "optimizer", tuple(optimizers.names())),
            lr=_number(raw["lr"], "lr", 0.0, 10.0, low_open=True),
            lr_multipliers=_multipliers(raw["lr_multipliers"], len(hidden) + 1),
            batch_size=_batch_size(raw["batch_size"]),
            l2=_number(raw["l2"], "l2", 0.0, 100.0),
            seed=_int(raw["seed"], "seed", 0, 2**31 - 1),
        )
        config._check_pairs()
        return config

    def to_dict(self) -> dict:
        """Plain data for JSON (``batch_size`` None becomes ``"all"``)."""
        data = asdict(self)
        data.update(hidden=list(self.hidden), lr_multipliers=list(self.lr_multipliers),
                    batch_size="all" if self.batch_size is None else self.batch_size)
        return data

    @property
    def n_outputs(self) -> int:
        """Two outputs (one per class) after a softmax, else one."""
        return 2 if self.output_activation == "softmax" else 1

    def sizes(self, n_features: int) -> list[int]:
        """All layer widths, input to output."""
        return [n_features, *self.hidden, self.n_outputs]

    def lr_mapping(self) -> dict[str, float]:
        """The optimizer's ``lr``: parameter name -> ``lr * m_k`` of its layer."""
        rates = {}
        for k, factor in enumerate(self.lr_multipliers):
            rates[f"layers.{k}.weight"] = rates[f"layers.{k}.bias"] = self.lr * factor
        return rates

    def _check_pairs(self) -> None:
        losses.get(self.loss).check_output(self.output_activation)
        if self.dataset in REGRESSION and (self.loss not in ("mse", "half_sse")
                                           or self.output_activation == "softmax"):
            raise ValueError(f"{self.dataset!r} is a regression set: choose the loss mse or "
                             "half_sse and an output activation other than softmax")


def choices() -> dict:
    """What the page's menus offer and the limits of its fields."""
    return {
        "datasets": list(DATASETS),
        "regression": list(REGRESSION),
        "activations": list(HIDDEN_ACTIVATIONS),
        "output_activations": activations.names(),
        "losses": losses.names(),
        "optimizers": optimizers.names(),
        "max_layers": MAX_LAYERS,
        "max_neurons": MAX_NEURONS,
        "defaults": Config().to_dict(),
    }


# -- field checks --------------------------------------------------------------------------
def _choice(value, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _to_number(value, name: str) -> float:
    """A JSON number, or a string that holds one (a text field's content)."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{name} must be a number, got {value!r}")


def _number(value, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    number = _to_number(value, name)
    above = number > low if low_open else number >= low
    if not (math.isfinite(number) and above and number <= high):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}")
    return number


def _int(value, name: str, low: int, high: int) -> int:
    number = _to_number(value, name)
    if not (math.isfinite(number) and number == int(number) and low <= number <= high):
        raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    return int(number)


def _int_list(value, name: str, low: int, high: int, *, max_items: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) > max_items:
        raise ValueError(f"{name} must be a list of at most {max_items} layer widths, "
                         f"got {value!r}")
    return tuple(_int(item, f"{name}[{i}] (neurons of hidden layer {i + 1})", low, high)
                 for i, item in enumerate(value))


def _multipliers(value, n_layers: int) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != n_layers:
        raise ValueError(f"lr_multipliers must list one factor per layer ({n_layers}: the "
                         f"hidden layers and the output layer), got {value!r}")
    return tuple(_number(item, f"lr_multipliers[{k}] (layer {k + 1})", 0.0, MAX_MULTIPLIER)
                 for k, item in enumerate(value))


def _batch_size(value) -> int | None:
    if value in (None, "all"):
        return None
    return _int(value, "batch_size", 1, 10**6)
