"""Training diagnostics per layer: vanishing gradients, dead ReLUs, saturated units.

:class:`Diagnostics` is both a callback and a gradient hook; pass the same object as both::

    from matrixprop.diagnostics import Diagnostics

    diagnostics = Diagnostics(probe=X[:256])
    mp.fit(net, X, y, callbacks=[diagnostics], gradient_hooks=[diagnostics])

At the end of every epoch it adds to the History (so ``history.to_csv`` writes them), for each
layer ``k`` counted from 0 as in ``state_dict`` (``layers.{k}.weight``):

``layer{k}_grad_norm``
    The mean over the epoch's batches of ``||dL/dW_k||`` (Frobenius), taken where the batch
    gradient is complete (after L2 and any all-reduce, before clipping).
``layer{k}_weight_norm``
    ``||W_k||`` at the end of the epoch.
``layer{k}_update_ratio``
    ``||W_k after - W_k before|| / ||W_k before||`` for the epoch's last update.
``layer{k}_dead`` (ReLU layers)
    The fraction of units that received no gradient in any batch of the epoch: a ReLU unit
    gets none exactly when it is never positive on any sample it saw.
``layer{k}_saturated`` (sigmoid and tanh layers, with a ``probe`` batch)
    The fraction of the layer's outputs on the probe batch where ``f'(z)`` is below
    ``saturation`` times its largest value (0.25 for sigmoid, 1 for tanh).

The per-step cost is one dot product per layer (and a comparison of the bias gradient for
ReLU layers); the rest runs once per epoch.
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import _validation as check
from ._trace import layer_values
from .callbacks import Callback, TrainingState

__all__ = ["Diagnostics", "METRICS", "columns"]

METRICS = ("grad_norm", "weight_norm", "update_ratio", "dead", "saturated")
_KEY = re.compile(r"layer(\d+)_(" + "|".join(METRICS) + r")$")
_SATURABLE = {"sigmoid": 0.25, "tanh": 1.0}  # the largest value of f'


class Diagnostics(Callback):
    """Per-layer gradient norm, weight norm, update-to-weight ratio, dead and saturated units.

    Parameters
    ----------
    probe : array (n, n_inputs), optional
        A batch of inputs on which the saturation of sigmoid and tanh layers is measured at
        the end of each epoch (a few hundred training samples are plenty).
    saturation : float
        A unit's output counts as saturated where ``f'(z) < saturation * max f'``.
    """

    def __init__(self, probe=None, saturation: float = 0.1):
        self.probe = probe
        self.saturation = check.fraction(saturation, "saturation")
        self._net = None

    # -- the callback ----------------------------------------------------------------------
    def on_train_begin(self, state: TrainingState) -> None:
        net = self._net = state.network
        self._probe = None if self.probe is None else check.inputs(
            self.probe, net.n_inputs, net.dtype, name="probe")
        slices = net.parameter_slices()
        self._weights = [slices[f"layers.{k}.weight"] for k in range(len(net.layers))]
        self._relu = [(k, slices.get(f"layers.{k}.bias"), layer.n_out)
                      for k, layer in enumerate(net.layers) if layer.activation.name == "relu"]
        self._before = np.empty(net.n_weights, dtype=net.dtype)

    def on_epoch_begin(self, state: TrainingState) -> None:
        self._steps, self._last = 0, state.steps_per_epoch
        self._grad_norms = np.zeros(len(self._weights))
        self._alive = {k: np.zeros(n, dtype=bool) for k, _, n in self._relu}

    def __call__(self, grads: np.ndarray) -> None:
        """The gradient hook: accumulate this batch's numbers."""
        if self._net is None:
            raise RuntimeError("Diagnostics must be passed to fit as a callback too: "
                               "fit(..., callbacks=[d], gradient_hooks=[d])")
        for k, where in enumerate(self._weights):
            g = grads[where]
            self._grad_norms[k] += math.sqrt(float(np.vdot(g, g)))
        for k, bias, n_out in self._relu:
            if bias is not None:
                self._alive[k] |= grads[bias] != 0
            else:
                self._alive[k] |= np.any(grads[self._weights[k]].reshape(n_out, -1) != 0, axis=1)
        self._steps += 1
        if self._steps == self._last:  # the epoch's last update comes next: keep W before it
            np.copyto(self._before, self._net.params[: self._net.n_weights])

    def on_epoch_end(self, state: TrainingState) -> None:
        if self._steps == 0:
            raise RuntimeError("Diagnostics received no gradients: pass it to fit as a gradient "
                               "hook too: fit(..., callbacks=[d], gradient_hooks=[d])")
        net, logs = self._net, {}
        for k, where in enumerate(self._weights):
            W, before = net.params[where], self._before[where]
            logs[f"layer{k}_grad_norm"] = self._grad_norms[k] / self._steps
            logs[f"layer{k}_weight_norm"] = float(np.linalg.norm(W))
            logs[f"layer{k}_update_ratio"] = float(
                np.linalg.norm(W - before) / max(np.linalg.norm(before), np.finfo(float).tiny))
        for k, alive in self._alive.items():
            logs[f"layer{k}_dead"] = 1.0 - float(np.mean(alive))
        logs.update(self._saturation())
        for key, value in logs.items():
            _record(state, key, float(value))

    def _saturation(self) -> dict[str, float]:
        if self._probe is None:
            return {}
        logs = {}
        values = layer_values(self._net, self._probe)
        for k, (layer, (Z, _)) in enumerate(zip(self._net.layers, values, strict=True)):
            peak = _SATURABLE.get(layer.activation.name)
            if peak is not None:
                flat = layer.activation.derivative(Z) < self.saturation * peak
                logs[f"layer{k}_saturated"] = float(np.mean(flat))
        return logs


def _record(state: TrainingState, key: str, value: float) -> None:
    """Add ``key`` to the epoch just appended to the History (NaN for earlier epochs without
    it, so every column keeps one value per epoch) and to the epoch's logs."""
    column = state.history.history.setdefault(key, [math.nan] * len(state.history.epochs))
    column[-1] = value
    state.logs[key] = value


def columns(history) -> dict[str, dict[int, list[float]]]:
    """The diagnostics in ``history``: metric -> layer -> one value per epoch (metrics in the
    order of :data:`METRICS`, layers in order; empty when it has none)."""
    found: dict[str, dict[int, list[float]]] = {}
    for key, values in history.history.items():
        match = _KEY.match(key)
        if match:
            found.setdefault(match[2], {})[int(match[1])] = values
    return {metric: dict(sorted(found[metric].items())) for metric in METRICS if metric in found}
