"""Optional compiled training epochs and inference: ``pip install "matrixprop[fast]"`` (numba,
SciPy, whose BLAS the kernels call, and threadpoolctl, with which training steps and inference
split their rows over the cores: see ``_split``).

:func:`matrixprop.fit`, :meth:`Network.predict <matrixprop.Network.predict>` and the
scikit-learn estimators use them by default (``accelerate="auto"``) when both are installed and
the run needs nothing that only the NumPy engine offers (dropout, gradient hooks,
data-parallel training, an activation, loss or optimizer without a compiled form; see
:mod:`matrixprop.engines`); ``accelerate=False`` forces the NumPy engine and
``accelerate=True`` raises if the compiled path cannot run. Both paths compute the same
equations and agree to float rounding (tested); the compiled one fuses passes, so its roundings
may fall differently.

The first call compiles the kernels (10 to 20 seconds; the first training whose steps split
over the cores, as much again for its parallel kernel); numba caches them on disk afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .._validation import check_finite
from ._available import available, load_blas
from ._split import run_split, shared_blas

__all__ = ["available", "load_blas", "check_accelerate", "predictor", "unsupported_reason",
           "CompiledEngine"]

# A training step splits over the cores (see _kernels._train_steps) from this many rows per
# core and this much work per step (rows x weights, the multiply-adds of one product pass:
# below, the step's two parallel launches cost more than the split saves), for networks
# whose parameters take at most this many bytes: every core then reads all the weights, which
# costs more than the split saves once they outgrow the caches. The measurements behind these
# thresholds, and the next two, are in benchmarks/README.md ("The compiled engine's thresholds").
MIN_ROWS_PER_SHARE = 64
MIN_SPLIT_WORK = 1 << 22
MAX_SPLIT_BYTES = 4 << 20
# A split step sums each layer's weight gradient from the shares' products over their own rows
# when its batch holds at least this many input values per weight (and the shares' products
# take at most MAX_SPLIT_BYTES): each core then reads only rows it gathered and computed, at
# the price of a pass over the weights per step; otherwise each share's output units take
# their product over the whole batch
ROW_SUMS_MIN_INPUTS_PER_WEIGHT = 1.0
# Up to this many rows a whole step computes each layer's Z^T = W A_prev^T, whose layout
# OpenBLAS multiplies faster at small batches than Z = A_prev W^T (it packs W transposed for
# the latter, in every call), a gain that fades as the batch grows
TRANSPOSED_FORWARD_MAX_ROWS = 64
_forked = False  # whether this process is a fork of another (see _training_shares)


def _note_fork() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)


def check_accelerate(value):
    """``value`` if it is a valid ``accelerate`` setting: "auto", True or False."""
    if value not in (True, False, "auto") or not isinstance(value, (bool, str)):
        raise ValueError(f"accelerate must be True, False or 'auto', got {value!r}")
    return value


def predictor(accelerate, net) -> Callable[[np.ndarray, np.ndarray, int], None] | None:
    """``predict(X, out, chunk)`` writing ``net``'s outputs for ``X`` into ``out`` in compiled
    code, when ``accelerate`` asks for it and ``net``'s activations have compiled forms; else
    None (with ``accelerate=True``, a ValueError that says why). It raises the ValueError of
    :func:`check_finite` for a NaN or an infinity in ``X``, found on the way (a pass of its
    own over a large ``X`` would cost a noticeable part of the prediction)."""
    return _if_allowed(accelerate, "compiled prediction", lambda: _activation_reason(net),
                       lambda: _Predictor(net))


def _if_allowed(accelerate, what: str, reason: Callable[[], str | None], build: Callable):
    """``build()`` when ``accelerate`` asks for the compiled path and ``reason()`` finds
    nothing against it; else None, or with ``accelerate=True`` a ValueError naming the
    reason."""
    if not check_accelerate(accelerate):
        return None
    why = reason()
    if why is None:
        return build()
    if accelerate is True:
        raise ValueError(f"accelerate=True, but {what} cannot run: {why}")
    return None


def _activation_reason(net) -> str | None:
    if not available():
        return "numba or scipy is not installed (pip install 'matrixprop[fast]')"
    from ._kernels import activation_code

    unknown = [layer.activation for layer in net.layers
               if activation_code(layer.activation) is None]
    return (f"activation {unknown[0].name!r} has no compiled form ({type(unknown[0]).__name__} "
            "is not a registered activation with a scalar rule)" if unknown else None)


def unsupported_reason(run) -> str | None:
    """Why the compiled epochs cannot run ``run`` (a :class:`matrixprop.engines.Run`), or
    None when they can."""
    net = run.net
    # first what needs no kernels (loading them loads SciPy's BLAS, with its own threads)
    if any(layer.dropout for layer in net.layers):
        return "dropout draws its masks with NumPy's generator"
    if run.gradient_hooks:
        return "gradient hooks are Python callables"
    if run.shards is not None:
        return "data-parallel training all-reduces each gradient between its steps"
    reason = _activation_reason(net)
    if reason is not None:
        return reason
    from ._kernels import RULES, loss_code

    if loss_code(run.loss) is None:
        return f"loss {run.loss.name!r} ({type(run.loss).__name__}) has no compiled form"
    if run.optimizer.compiled_form() not in RULES:
        return (f"optimizer {type(run.optimizer).__name__} has no compiled form (it changes "
                "the update rule without declaring a compiled_rule)")
    return None


def _pack_optimizer(opt, net) -> tuple[int, np.ndarray, list[str]]:
    """The kernel's code for ``opt``'s rule, its hyper-parameters in the order the kernel reads
    them, and the names of the state buffers in the kernel's slots s1, s2, s3 ("" where the
    rule leaves a slot unused), each checked to cover every parameter (compiled code does not
    check bounds)."""
    from ._kernels import RULES

    code, hyper_names, slots = RULES[opt.compiled_form()]
    hyper = opt.compiled_hyper()
    used = [name if name and (when is None or hyper[when]) else "" for name, when in slots]
    for name in filter(None, used):
        buffer = opt.state.get(name)
        if buffer is None or buffer.shape != net.params.shape:
            raise ValueError(f"optimizer state {name!r} does not match the network's "
                             f"{net.params.size} parameters: call optimizer.setup(net) afresh")
    return code, np.array([hyper[name] for name in hyper_names]), used


def _layer_arrays(net) -> tuple:
    """The kernels' view of ``net``'s layers: weights, biases (zeros where a layer has none:
    one loop for both kinds), activation codes and parameters."""
    from ._kernels import activation_code

    return (tuple(layer.W for layer in net.layers),
            tuple(layer.b if layer.bias else np.zeros(layer.n_out, net.dtype)
                  for layer in net.layers),
            np.array([activation_code(layer.activation) for layer in net.layers]),
            np.array([layer.activation.parameter for layer in net.layers]))


class _Predictor:
    """Compiled inference of one network (see :func:`predictor`)."""

    def __init__(self, net):
        from . import _kernels

        self._kernels, self.net = _kernels, net
        self._none = np.empty((0, 0), net.dtype)  # no derivative buffer: inference

    def __call__(self, X: np.ndarray, out: np.ndarray, chunk: int) -> None:
        net = self.net
        Ws, bs, codes, params = _layer_arrays(net)

        finite = []  # per range: whether its first products were all finite

        def predict_range(start: int, stop: int) -> None:
            rows = min(chunk, stop - start)
            hidden = tuple(np.empty((rows, layer.n_out), net.dtype)
                           for layer in net.layers[:-1])
            finite.append(self._kernels.predict_rows(
                X[start:stop], Ws, bs, codes, params, (*hidden, self._none), self._none,
                out[start:stop], chunk))

        run_split(X.shape[0], predict_range)
        if not all(finite):  # a NaN or an infinity in X, or large values that overflowed
            check_finite(X, "X")


def _new_batch_arrays(engine: CompiledEngine, rows: int, transposed: bool) -> tuple:
    """The kernel's arrays for batches of ``rows`` rows: activations, derivatives, deltas, the
    gathered batch (inputs, targets, weights, labels), and each layer's scratch for Z^T,
    (n_out, rows) when ``transposed``, else (n_out, 0)."""
    net, dtype = engine.net, engine.net.dtype
    widths = [layer.n_out for layer in net.layers]
    return (
        tuple(np.empty((rows, m), dtype) for m in widths),  # A
        tuple(np.empty((rows, m), dtype) for m in widths),  # F
        tuple(np.empty((rows, m), dtype) for m in widths),  # D
        np.empty((rows, net.n_inputs), dtype),
        np.empty((rows, net.n_outputs), dtype),
        np.empty(rows if engine.weights.size else 0, dtype),
        np.empty(rows if engine.labels.size else 0, np.int64),
        tuple(np.empty((m, rows if transposed else 0), dtype) for m in widths),  # Z^T
    )


class CompiledEngine:
    """Runs whole epochs of a :class:`matrixprop.engines.Run` in compiled code (the engines'
    interface: :meth:`run_epoch`).

    The run's ``X``, ``Y`` and ``sample_weight`` must be C-contiguous in the network's dtype;
    with ``labels`` (a classifier's class indices) each epoch also counts its hits.
    """

    name = "compiled"
    reason = None  # it runs: nothing to explain

    def __init__(self, run):
        from numba import get_num_threads

        from . import _kernels

        self._kernels, self._numba_threads = _kernels, get_num_threads
        self.run = run
        net, loss, X, Y = run.net, run.loss, run.X, run.Y
        sample_weight, labels = run.sample_weight, run.labels
        self.net, self.X, self.Y = net, X, Y
        dtype = net.dtype
        empty = np.empty(0, dtype)
        Ws, bs, codes, params = _layer_arrays(net)
        self.layers = (
            Ws, bs,
            tuple(layer.dW for layer in net.layers),
            tuple(layer.db if layer.bias else empty for layer in net.layers),
            np.array([layer.bias for layer in net.layers]),
            codes, params,
        )
        fused = net.output_activation.name == loss.fused_output
        self.loss = (_kernels.loss_code(loss), fused, *loss.scale_form(), labels is not None,
                     fused and loss.logit_term is not None)  # the value from the logits
        self.labels = (np.asarray(labels, dtype=np.int64) if labels is not None
                       else np.empty(0, np.int64))
        self.weights = sample_weight if sample_weight is not None else empty
        self.data = (X, Y, self.labels, self.weights)
        slices = net.parameter_slices()
        self.offsets = (  # where each layer's weights and biases start in the flat buffers
            np.array([slices[f"layers.{k}.weight"].start for k in range(len(net.layers))]),
            np.array([slices[f"layers.{k}.bias"].start if layer.bias else 0
                      for k, layer in enumerate(net.layers)]))
        self._batches: dict[tuple[int, bool], tuple] = {}
        self._sums: dict[tuple[int, bool], tuple[tuple, tuple]] = {}
        self._empty = empty

    def _training_shares(self, rows: int) -> int:
        """How many shares a step of ``rows`` rows may split into: numba's threads; one for
        fewer than two shares' rows, less work than :data:`MIN_SPLIT_WORK`, parameters over
        :data:`MAX_SPLIT_BYTES`, and in a forked process (numba's GNU OpenMP threading layer
        kills a forked child that starts parallel work after its parent did). numba's threads
        start only when asked for."""
        net = self.net
        if (rows < 2 * MIN_ROWS_PER_SHARE or rows * net.n_weights < MIN_SPLIT_WORK or _forked
                or net.params.nbytes > MAX_SPLIT_BYTES):
            return 1
        try:
            return self._numba_threads()
        except (RuntimeError, ValueError):  # no threading layer numba can load
            return 1

    def _row_sums(self, rows: int, parts: int) -> bool:
        """Whether a step of ``rows`` rows split into ``parts`` shares sums the shares' weight
        gradients (see :data:`ROW_SUMS_MIN_INPUTS_PER_WEIGHT`)."""
        net = self.net
        return (parts > 1 and rows * net.n_inputs >= ROW_SUMS_MIN_INPUTS_PER_WEIGHT * net.n_weights
                and parts * net.n_weights * net.params.itemsize <= MAX_SPLIT_BYTES)

    def _batch_arrays(self, rows: int, parts: int) -> tuple:
        """The kernel's arrays for batches of ``rows`` rows in ``parts`` shares (see
        _new_batch_arrays); Z^T is computed in a whole step of at most
        :data:`TRANSPOSED_FORWARD_MAX_ROWS` rows."""
        transposed = parts == 1 and rows <= TRANSPOSED_FORWARD_MAX_ROWS
        if (rows, transposed) not in self._batches:
            self._batches[rows, transposed] = _new_batch_arrays(self, rows, transposed)
        return self._batches[rows, transposed]

    def _share_sums(self, parts: int, weights: bool) -> tuple[tuple, tuple]:
        """Each layer's scratch for its shares' bias-gradient sums, (parts, n_out), and for
        their weight-gradient products over their own rows, (parts, n_out, n_in) with
        ``weights``, else empty; whatever the batch's rows."""
        if (parts, weights) not in self._sums:
            layers, dtype = self.net.layers, self.net.dtype
            self._sums[parts, weights] = (
                tuple(np.empty((parts, layer.n_out), dtype) for layer in layers),
                tuple(np.empty((parts if weights else 0, *layer.W.shape), dtype)
                      for layer in layers))
        return self._sums[parts, weights]

    def _weight_blocks(self, buffer: np.ndarray | None) -> tuple:
        """Views of ``buffer`` (laid out as the parameters) shaped as each layer's weights;
        empty arrays without a buffer."""
        if buffer is None or buffer.size == 0:
            return tuple(np.empty((0, 0), self.net.dtype) for _ in self.net.layers)
        slices = self.net.parameter_slices()
        return tuple(buffer[slices[f"layers.{k}.weight"]].reshape(layer.W.shape)
                     for k, layer in enumerate(self.net.layers))

    def run_epoch(self, order: np.ndarray | None, on_batch=None) -> tuple[float, int, int]:
        """Train one epoch in ``order`` (None: in order): (the loss total, hits, the first bad
        step or -1), as :meth:`matrixprop.engines.NumpyEngine.run_epoch`. With ``on_batch``
        each step is its own kernel call, followed by ``on_batch(step, batch_loss)``."""
        run, n = self.run, self.X.shape[0]
        order = np.arange(n) if order is None else order
        total, hits, first_bad, step = 0.0, 0, -1, 0
        per_sample = run.loss.scale_form()[0]
        rule = self._rule_arrays()  # once per epoch: with on_batch there is a call per step
        for start, stop, rows in _step_ranges(n, run.batch_size, on_batch is not None):
            part, part_hits, bad = self._run_steps(rule, order, start, stop, rows)
            total += part
            hits += part_hits
            if bad >= 0 and first_bad < 0:
                first_bad = step + bad
                if run.halt:
                    break
            if on_batch is not None:
                on_batch(step, part / rows if per_sample else part)
            step += (stop - start) // rows
        return total, hits, first_bad

    def _rule_arrays(self) -> tuple:
        """The optimizer's rule as the kernels take it: its code, hyper-parameters and state
        buffers, and the momentum buffer's block of each layer's weights."""
        net, opt = self.net, self.run.optimizer
        opt_code, hyper, slots = _pack_optimizer(opt, net)
        states = [opt.state[name] if name else self._empty for name in slots]
        momentum_blocks = self._weight_blocks(opt.state.get("momentum_buffer")
                                              if slots[0] == "momentum_buffer" else None)
        return opt_code, hyper, states, momentum_blocks

    def _run_steps(self, rule: tuple, order, start: int, stop: int, rows: int
                   ) -> tuple[float, int, int]:
        """The steps over ``order[start:stop]`` in batches of ``rows``, in one kernel call
        (``rule``: :meth:`_rule_arrays`); the learning rate is read afresh, as each NumPy
        step reads it."""
        run, net, opt = self.run, self.net, self.run.optimizer
        opt_code, hyper, states, momentum_blocks = rule
        lr = np.atleast_1d(np.asarray(opt.current_lr, dtype=net.dtype))  # float32 math stays so
        clip = -1.0 if run.clip is None else run.clip
        optimizer_arrays = (opt_code, hyper, lr, net.params, net.grads, *states)
        # the split is measured with one BLAS thread per share only
        with shared_blas(rows, MIN_ROWS_PER_SHARE, self._training_shares(rows),
                         one_thread_each=True) as parts:
            kernel = self._kernels.train_steps_split if parts > 1 else self._kernels.train_steps
            part, part_hits, opt.t, bad = kernel(
                parts, self.data, order, start, stop, rows, self.layers,
                self._batch_arrays(rows, parts), self.loss, optimizer_arrays, net.n_weights,
                self.offsets, run.l2, run.l2_per_batch, clip, run.halt, opt.t,
                momentum_blocks, *self._share_sums(parts, self._row_sums(rows, parts)))
        return part, part_hits, bad


def _step_ranges(n: int, batch_size: int, one_by_one: bool):
    """(start, stop, rows) of the kernel calls of an epoch: the whole batches in one call and
    the last, partial batch in another, or (``one_by_one``) every step in a call of its own."""
    full = n - n % batch_size
    if one_by_one:
        yield from ((start, start + batch_size, batch_size) for start in range(0, full, batch_size))
    elif full:
        yield 0, full, batch_size
    if full < n:
        yield full, n, n - full
