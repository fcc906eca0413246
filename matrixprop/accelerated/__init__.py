"""Optional compiled training epochs: ``pip install "matrixprop[fast]"`` (numba).

:func:`matrixprop.fit` uses them by default (``accelerate="auto"``) when numba is installed and
the run needs nothing that only the NumPy engine offers (dropout, gradient hooks, per-batch
callbacks, data-parallel training); ``accelerate=False`` forces the NumPy engine and
``accelerate=True`` raises if the compiled path cannot run. Both paths compute the same
equations in the same order and agree to float rounding (tested).

The first call compiles the kernels (a few seconds); numba caches them on disk afterwards.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from .. import optimizers as optimizers_module

__all__ = ["available", "unsupported_reason", "FastEpochs"]

ACTIVATION_CODES = {name: code for code, name in enumerate(
    ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "softmax"])}
LOSS_CODES = {"half_sse": 0, "mse": 1, "cross_entropy": 2, "binary_cross_entropy": 3}
REDUCTION_CODES = {"mean": 0, "sum": 1, "batchmean": 2}


def available() -> bool:
    """Whether numba is installed."""
    return importlib.util.find_spec("numba") is not None


def unsupported_reason(trainer) -> str | None:
    """Why the compiled epochs cannot run ``trainer``'s training, or None when they can."""
    from ..training import Trainer

    if not available():
        return "numba is not installed (pip install 'matrixprop[fast]')"
    if type(trainer).train_step is not Trainer.train_step:
        return "the training step is customized (data-parallel training)"
    if trainer.dropout_rng is not None:
        return "dropout draws its masks with NumPy's generator"
    if trainer.hooks:
        return "gradient hooks are Python callables"
    if type(trainer.optimizer) not in _OPTIMIZERS:
        return f"optimizer {type(trainer.optimizer).__name__} has no compiled form"
    return None


def _pack_optimizer(opt) -> tuple[int, np.ndarray]:
    """The kernel's optimizer code and hyper-parameter array (see _kernels._optimizer_step)."""
    wd, decoupled = opt.weight_decay, float(opt.decoupled_weight_decay)
    if isinstance(opt, optimizers_module.SGD):
        return 0, np.array([wd, decoupled, opt.momentum, opt.dampening, float(opt.nesterov)])
    if isinstance(opt, optimizers_module.Adam):
        return 1, np.array([wd, decoupled, *opt.betas, opt.eps])
    if isinstance(opt, optimizers_module.Adagrad):
        return 2, np.array([wd, decoupled, opt.eps, opt.lr_decay])
    return 3, np.array([wd, decoupled, opt.alpha, opt.eps, opt.momentum, float(opt.centered)])


# the optimizer state buffers in the kernel's slots s1, s2, s3, by optimizer code
_STATE_SLOTS = {
    0: ("momentum_buffer", "", ""),
    1: ("exp_avg", "exp_avg_sq", ""),
    2: ("sum", "", ""),
    3: ("square_avg", "grad_avg", "momentum_buffer"),
}

_OPTIMIZERS = (optimizers_module.SGD, optimizers_module.Adam, optimizers_module.AdamW,
               optimizers_module.Adagrad, optimizers_module.RMSprop)


class _Buffers:
    """Per-batch-size arrays of the kernel: activations, derivatives, deltas, the gathered batch."""

    def __init__(self, trainer, rows: int):
        net, dtype = trainer.net, trainer.net.dtype
        widths = [layer.n_out for layer in net.layers]
        self.A = tuple(np.empty((rows, m), dtype) for m in widths)
        self.F = tuple(np.empty((rows, m), dtype) for m in widths)
        self.D = tuple(np.empty((rows, m), dtype) for m in widths)
        self.xb = np.empty((rows, net.n_inputs), dtype)
        self.yb = np.empty((rows, net.n_outputs), dtype)
        self.wb = np.empty(rows if trainer.w is not None else 0, dtype)
        self.lb = np.empty(rows if trainer.classify else 0, np.int64)


class FastEpochs:
    """Runs whole epochs of a :class:`~matrixprop.training.Trainer` in compiled code."""

    def __init__(self, trainer):
        from . import _kernels

        self._kernels = _kernels  # no reference to the trainer: it holds this object
        net, loss, dtype = trainer.net, trainer.loss, trainer.net.dtype
        empty = np.empty(0, dtype)
        self.layers = (
            tuple(layer.W for layer in net.layers),
            tuple(layer.b if layer.bias else empty for layer in net.layers),
            tuple(layer.dW for layer in net.layers),
            tuple(layer.db if layer.bias else empty for layer in net.layers),
            np.array([layer.bias for layer in net.layers]),
            np.array([ACTIVATION_CODES[layer.activation.name] for layer in net.layers]),
            np.array([_activation_parameter(layer.activation) for layer in net.layers]),
        )
        self.loss = (LOSS_CODES[loss.name], net.output_activation.name == loss.fused_output,
                     loss.elementwise, REDUCTION_CODES[loss.reduction], trainer.classify)
        self.labels = (np.asarray(trainer.labels, dtype=np.int64) if trainer.classify
                       else np.empty(0, np.int64))
        self.weights = trainer.w if trainer.w is not None else empty
        self._buffers: dict[int, _Buffers] = {}
        self._empty = empty

    def _buffers_for(self, trainer, rows: int) -> _Buffers:
        if rows not in self._buffers:
            self._buffers[rows] = _Buffers(trainer, rows)
        return self._buffers[rows]

    def run_epoch(self, trainer, order: np.ndarray | None) -> tuple[float, int, int]:
        """Train one epoch of ``trainer`` in ``order``; returns (loss total, hits, first bad
        step or -1)."""
        opt, net = trainer.optimizer, trainer.net
        order = np.arange(trainer.n) if order is None else order
        opt_code, hyper = _pack_optimizer(opt)
        lr = np.atleast_1d(np.asarray(opt.current_lr, dtype=net.dtype))  # float32 math stays so
        states = [opt.state.get(name, self._empty) for name in _STATE_SLOTS[opt_code]]
        l2f = trainer.l2 / trainer.n
        clip = -1.0 if trainer.clip is None else trainer.clip
        total, hits, steps_done = 0.0, 0, 0
        B = trainer.batch_size
        full = trainer.n - trainer.n % B
        for start, stop, rows in ((0, full, B), (full, trainer.n, trainer.n - full)):
            if stop == start:
                continue
            bufs = self._buffers_for(trainer, rows)
            part, part_hits, opt.t, bad = self._kernels.train_steps(
                trainer.X, trainer.Y, self.labels, self.weights, order, start, stop, rows,
                *self.layers, bufs.A, bufs.F, bufs.D, bufs.xb, bufs.yb, bufs.wb, bufs.lb,
                *self.loss, net.params, net.grads, net.n_weights, l2f, clip,
                opt_code, hyper, lr, states[0], states[1], states[2], opt.t)
            total += part
            hits += part_hits
            if bad >= 0:
                return total, hits, steps_done + bad
            steps_done += (stop - start) // rows
        return total, hits, -1


def _activation_parameter(activation) -> float:
    config = activation.config()
    return float(config.get("negative_slope", config.get("alpha", 0.0)))
