"""Networks of dense layers: the chain-rule loop over layers, and the parameters in one buffer.

All weights and biases live in ONE flat array (``net.params``) and all gradients in another
(``net.grads``); each layer's ``W`` (n_out, n_in) and ``b`` (n_out,) are C-contiguous views into
them. The weights of all layers come first, then the biases, so the weight block is one slice too
(for L2 regularization). An optimizer step, an all-reduce or a checkpoint is then one operation on
one array, whatever the depth.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from . import _validation as check
from . import accelerated
from . import losses as losses_module
from .layers import Dense, LayerWorkspace

__all__ = ["Network", "MLP"]

_WORKSPACES_KEPT = 4  # batch sizes whose buffers stay allocated (full batch, last batch, ...)
_PREDICT_CHUNK = 4096
_COMPILED_ROWS = 2048  # below, the first call's set-up costs more than it saves


class Network:
    """A feed-forward network: a sequence of :class:`Dense` layers.

    Parameters
    ----------
    layers : sequence of Dense
        Consecutive layers; each layer's ``n_in`` must equal the previous one's ``n_out``.
    seed : int or None
        Seeds the generator that draws the initial weights and the dropout masks.
    dtype : "float32" or "float64"
        Floating type of the parameters and of every computation.
    """

    def __init__(self, layers: Sequence[Dense], *, seed: int | None = None, dtype="float32"):
        self.layers = list(layers)
        self.dtype = _float_dtype(dtype)
        self.seed = seed
        self._check_layers()
        self.rng = np.random.default_rng(seed)
        self._slices = self._layout()
        size = sum(s.stop - s.start for s, _ in self._slices.values())
        self.params = np.zeros(size, dtype=self.dtype)
        self.grads = np.zeros(size, dtype=self.dtype)
        self.n_weights = sum(layer.weight_size for layer in self.layers)
        self._bind_layers()
        for layer in self.layers:
            layer.reset_parameters(self.rng)
        self._workspaces: OrderedDict[int, list[LayerWorkspace]] = OrderedDict()

    # -- construction helpers --------------------------------------------------------------
    def _check_layers(self) -> None:
        if not self.layers:
            raise ValueError("a network needs at least one layer")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layer {i} must be a Dense layer, got {type(layer).__name__}")
            if i and layer.n_in != self.layers[i - 1].n_out:
                raise ValueError(
                    f"layer {i} takes {layer.n_in} inputs but layer {i - 1} gives "
                    f"{self.layers[i - 1].n_out} outputs"
                )
            last = i == len(self.layers) - 1
            if layer.activation.output_only and not last:
                raise ValueError(f"{layer.activation.name} may only be the output activation")
            if last and layer.dropout:
                raise ValueError("dropout on the output layer is not supported")

    def _layout(self) -> dict[str, tuple[slice, tuple[int, ...]]]:
        """Name -> (slice of the flat buffer, shape): all weights first, then all biases."""
        entries, offset = {}, 0
        for i, layer in enumerate(self.layers):
            entries[f"layers.{i}.weight"] = (slice(offset, offset + layer.weight_size),
                                             (layer.n_out, layer.n_in))
            offset += layer.weight_size
        for i, layer in enumerate(self.layers):
            if layer.bias:
                entries[f"layers.{i}.bias"] = (slice(offset, offset + layer.n_out), (layer.n_out,))
                offset += layer.n_out
        order = [f"layers.{i}.{kind}" for i in range(len(self.layers))
                 for kind in ("weight", "bias")]
        return {name: entries[name] for name in order if name in entries}

    def _view(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        where, shape = self._slices[name]
        return self.params[where].reshape(shape), self.grads[where].reshape(shape)

    def _bind_layers(self) -> None:
        """Point every layer's W, b, dW, db at its slice of the flat buffers."""
        for i, layer in enumerate(self.layers):
            W, dW = self._view(f"layers.{i}.weight")
            b, db = self._view(f"layers.{i}.bias") if layer.bias else (None, None)
            layer.bind(W, b, dW, db)

    # -- pickling and deep copies: views do not survive them, so they are rebuilt ----------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_workspaces"] = OrderedDict()  # scratch buffers, reallocated on demand
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_layers()

    # -- properties ------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def sizes(self) -> list[int]:
        """The widths of every layer, input first: ``[784, 30, 10]``."""
        return [self.n_inputs] + [layer.n_out for layer in self.layers]

    @property
    def output_activation(self):
        return self.layers[-1].activation

    def parameter_slices(self) -> dict[str, slice]:
        """Name -> the slice of ``params`` (and ``grads``) that holds that parameter."""
        return {name: where for name, (where, _) in self._slices.items()}

    def parameter_layout(self) -> dict[str, tuple[slice, tuple[int, ...]]]:
        """Name -> (the slice of ``params`` that holds the parameter, its shape)."""
        return dict(self._slices)

    # -- parameters ------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """``layers.{i}.weight`` and ``layers.{i}.bias`` in layer order, as views of the live
        parameters (as PyTorch's ``state_dict``): copy them to keep a snapshot."""
        return OrderedDict((name, self._view(name)[0]) for name in self._slices)

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy parameters from ``state`` after checking every name, shape and dtype."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping of names to arrays, got {type(state)}")
        missing = [name for name in self._slices if name not in state]
        unexpected = [name for name in state if name not in self._slices]
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not fit the network: missing {missing}, unexpected {unexpected}"
            )
        arrays = {}
        for name, (_, shape) in self._slices.items():
            value = np.asarray(state[name])
            if value.dtype.kind != "f":
                raise TypeError(f"{name} must be a floating-point array, got dtype {value.dtype}")
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
            check.check_finite(value, name)
            arrays[name] = value
        for name, value in arrays.items():  # all checked: now copy
            self.params[self._slices[name][0]] = value.reshape(-1)

    def copy(self) -> Network:
        """An independent network with the same layers and parameters."""
        return self.astype(self.dtype)

    def astype(self, dtype) -> Network:
        """A copy of the network computing in ``dtype`` (parameters cast)."""
        clone = Network.from_config(self.config(), dtype=dtype)
        clone.params[...] = self.params
        clone.rng.bit_generator.state = self.rng.bit_generator.state
        return clone

    def config(self) -> dict:
        """The architecture as plain data: enough for :meth:`from_config` (not the weights)."""
        return {
            "layers": [layer.config() for layer in self.layers],
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict, **overrides) -> Network:
        """Build a network from :meth:`config`; keyword arguments override its entries."""
        config = {**config, **overrides}
        layers = [Dense.from_config(layer) for layer in config["layers"]]
        return Network(layers, seed=config.get("seed"), dtype=config.get("dtype", "float32"))

    # -- workspaces ------------------------------------------------------------------------
    def workspace(self, batch_size: int) -> list[LayerWorkspace]:
        """Each layer's buffers for batches of ``batch_size`` rows, allocated on first use and
        reused (the output layer keeps its logits apart, for the loss)."""
        ws = self._workspaces.get(batch_size)
        if ws is None:
            last = len(self.layers) - 1
            ws = [LayerWorkspace(layer, batch_size, self.dtype, keep_z=k == last)
                  for k, layer in enumerate(self.layers)]
            self._workspaces[batch_size] = ws
            while len(self._workspaces) > _WORKSPACES_KEPT:
                self._workspaces.popitem(last=False)
        return ws

    # -- the chain-rule loop ---------------------------------------------------------------
    def forward(self, X: np.ndarray, ws: list[LayerWorkspace], rng=None) -> np.ndarray:
        """Forward pass of a validated batch into the workspace ``ws`` (:meth:`workspace`);
        returns the output layer's activations. ``rng`` (training) turns dropout on."""
        A = X
        for layer, lw in zip(self.layers, ws, strict=True):
            A = lw.out = layer.forward(A, lw, rng)
        return A

    def backward(self, X, Y, loss, ws, sample_weight=None, dropped=False, count=None) -> float:
        """Backward pass after :meth:`forward`: fills ``self.grads``, returns the loss.

        ``count``: the samples the loss's reduction divides by (default the batch's; in
        data-parallel training, the global batch's, of which ``X`` is a shard).
        """
        last, lw = self.layers[-1], ws[-1]
        value, _ = loss.value_and_delta(
            lw.A, Y, lw.Z, last.activation, lw.G, sample_weight, lw.scratch, count
        )  # D_L
        for k in range(len(self.layers) - 1, 0, -1):
            self.layers[k].backward(ws[k - 1].out, ws[k], ws[k - 1].G)  # dW_k, db_k, dL/dA_{k-1}
            self.layers[k - 1].delta(ws[k - 1], dropped)  # D_{k-1} = dL/dA_{k-1} * f'(Z_{k-1})
        self.layers[0].backward(X, ws[0], None)
        return value

    # -- public computations ---------------------------------------------------------------
    def predict(self, X, batch_size: int | None = None, *, accelerate="auto") -> np.ndarray:
        """The output layer's activations for each row of ``X``, as a new array.

        ``batch_size`` rows are computed at a time. ``accelerate``: "auto" computes inputs of
        at least 2048 rows in compiled code when numba and SciPy are installed
        (``matrixprop[fast]``), True always does, False never; both give the same outputs up
        to float rounding. The compiled path gives each BLAS thread its own share of the rows
        (``batch_size`` at a time on each), BLAS's threads shared out among them meanwhile: a
        process-wide setting, which BLAS work in other threads shares for that time.
        """
        X = check.inputs(X, self.n_inputs, self.dtype, finite=False)
        chunk = check.positive_int(batch_size or _PREDICT_CHUNK, "batch_size")
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        wanted = accelerate if accelerate != "auto" or X.shape[0] >= _COMPILED_ROWS else False
        compiled = accelerated.predictor(wanted, self)
        if compiled is not None:
            compiled(X, out, chunk)  # checks X's values on the way (see accelerated.predictor)
            return out
        check.check_finite(X, "X")
        with np.errstate(over="ignore"):
            for start in range(0, X.shape[0], chunk):
                rows = X[start:start + chunk]
                out[start:start + rows.shape[0]] = self.forward(rows,
                                                                self.workspace(rows.shape[0]))
        return out

    def _prepare(self, X, Y, loss, sample_weight):
        loss = losses_module.get(loss if loss is not None else default_loss(self))
        loss.check_output(self.output_activation)
        X = check.inputs(X, self.n_inputs, self.dtype)
        Y = check.targets(Y, X.shape[0], self.n_outputs, loss, self.dtype)
        w = check.sample_weights(sample_weight, X.shape[0], self.dtype)
        return X, Y, loss, w

    def loss(self, X, Y, loss=None, sample_weight=None, *, count: float | None = None,
             outputs: np.ndarray | None = None) -> float:
        """The loss of the network's predictions on ``X`` against ``Y`` (no dropout), from the
        output layer's logits (exact also for saturated outputs, as PyTorch's losses on
        logits). ``count``: the samples the reduction divides by (default those of ``X``: a
        shard of a larger set passes the set's); ``outputs``: an array of shape
        (n, n_outputs) that receives the predictions.
        """
        X, Y, loss, w = self._prepare(X, Y, loss, sample_weight)
        total = 0.0
        with np.errstate(over="ignore"):
            for start in range(0, X.shape[0], _PREDICT_CHUNK):
                stop = min(start + _PREDICT_CHUNK, X.shape[0])
                ws = self.workspace(stop - start)
                A = self.forward(X[start:stop], ws)
                if outputs is not None:
                    outputs[start:stop] = A
                total += loss.terms_sum(A, Y[start:stop], ws[-1].G,
                                        None if w is None else w[start:stop],
                                        ws[-1].Z, ws[-1].scratch)
        n = loss.count(X.shape[0], w) if count is None else count
        return loss.scale(n, self.n_outputs) * total

    def loss_and_gradients(
        self, X, Y, loss=None, sample_weight=None, *, training: bool = True
    ) -> tuple[float, OrderedDict[str, np.ndarray]]:
        """The loss and its gradient with respect to every parameter, by backpropagation.

        Returns ``(loss, grads)`` where ``grads`` has the keys of :meth:`state_dict` and holds
        fresh arrays (the next call does not overwrite them). ``training`` turns dropout on.
        """
        X, Y, loss, w = self._prepare(X, Y, loss, sample_weight)
        ws = self.workspace(X.shape[0])
        rng = self.rng if training else None
        with np.errstate(over="ignore"):
            self.forward(X, ws, rng)
            value = self.backward(X, Y, loss, ws, w, dropped=rng is not None)
        grads = OrderedDict((name, self._view(name)[1].copy()) for name in self._slices)
        return value, grads

    # -- description -----------------------------------------------------------------------
    def summary(self) -> str:
        """A table of the layers, their shapes and parameter counts."""
        lines = [f"{'layer':<7}{'W shape':<14}{'activation':<14}{'parameters':>10}"]
        for i, layer in enumerate(self.layers):
            lines.append(
                f"{i:<7}{f'({layer.n_out}, {layer.n_in})':<14}{layer.activation.name:<14}"
                f"{layer.weight_size + layer.bias_size:>10,}"
            )
        lines.append(f"total parameters: {self.params.size:,} ({self.dtype.name})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        body = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}({body}\n)"


class MLP(Network):
    """A multi-layer perceptron from its layer widths: ``MLP([784, 30, 10])``.

    Parameters
    ----------
    sizes : sequence of int
        Widths of the input, hidden and output layers (at least two numbers).
    activation : str, Activation or list of them
        Hidden activation, or one per hidden layer.
    output_activation : str, Activation or None
        Output activation; ``None`` means the same as ``activation`` (the article's network
        uses one f everywhere).
    seed, dtype : see :class:`Network`.
    init : str
        Weight initializer for every layer; see :mod:`matrixprop.initializers`.
    bias : bool
        Whether layers have biases.
    dropout : float or list of float
        Dropout on the hidden layers' outputs (one value for all, or one per hidden layer).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation="sigmoid",
        output_activation=None,
        *,
        seed: int | None = None,
        dtype="float32",
        init: str = "auto",
        bias: bool = True,
        dropout=0.0,
    ):
        sizes = list(sizes) if not isinstance(sizes, (str, bytes)) else sizes
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise ValueError(
                f"sizes must list at least an input and an output width, got {sizes!r}")
        n_hidden = len(sizes) - 2
        hidden = _per_layer(activation, n_hidden, "activation")
        if output_activation is None:
            output_activation = hidden[-1] if isinstance(activation, (list, tuple)) else activation
        drops = _per_layer(dropout, n_hidden, "dropout")
        layers = [
            Dense(sizes[i], sizes[i + 1], hidden[i], init=init, bias=bias, dropout=drops[i])
            for i in range(n_hidden)
        ]
        layers.append(Dense(sizes[-2], sizes[-1], output_activation, init=init, bias=bias))
        super().__init__(layers, seed=seed, dtype=dtype)


def _per_layer(value, n: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} lists {len(value)} values for {n} hidden layers")
        return list(value)
    return [value] * n


def _float_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype.name!r}")
    return dtype


def default_loss(net: Network) -> str:
    """The loss a network's output suggests: cross-entropy after softmax, else squared error."""
    return "cross_entropy" if net.output_activation.name == "softmax" else "mse"
