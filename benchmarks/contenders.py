"""One contender per framework: a factory that sets up a case and returns a timed epoch.

Every factory takes ``(case, X, y, seed)`` where ``X`` (n, 784) float32 and ``y`` (n,) int labels
hold exactly the samples of one epoch (whole batches), and returns a callable that runs one
epoch (one pass of inference for an inference case) and returns its :class:`Timing`. Set-up --
building the model, moving data into the framework, converting it to the case's dtype, compiling
-- happens in the factory, outside the timing. Training runs the case's optimizer (plain SGD at
:data:`cases.LR` unless the case says otherwise), reshuffled every epoch, the shuffled batch
gathered at every step. The JAX contenders run plain SGD in float32 only.

PyTorch, scikit-learn and JAX are imported inside their factories, so that the GEMM bound and
matrixprop run without them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count, pairwise
from time import perf_counter

import numpy as np

import matrixprop as mp

from .cases import LR, N_CLASSES, OPTIMIZERS, Case, build_network, initial_state, make_optimizer
from .gemm import GemmPlan

__all__ = [
    "Timing",
    "Run",
    "gemm_bound",
    "matrixprop_train",
    "matrixprop_predict",
    "matrixprop_numpy_predict",
    "torch_train",
    "torch_predict",
    "sklearn_train",
    "jax_step",
    "jax_scan",
]


@dataclass(frozen=True)
class Timing:
    """One timed epoch: ``samples`` processed in ``seconds``, with ``flops`` when counted."""

    samples: int
    seconds: float
    flops: int | None = None

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds

    @property
    def gflops(self) -> float | None:
        """Floating-point operations per second in GFLOP/s (None when not counted)."""
        return None if self.flops is None else self.flops / self.seconds / 1e9


Run = Callable[[], Timing]


def _timed(n: int, epoch: Callable[[], object], flops: int | None = None) -> Run:
    """A :data:`Run` that times ``epoch()`` over ``n`` samples."""

    def run() -> Timing:
        start = perf_counter()
        epoch()
        return Timing(n, perf_counter() - start, flops)

    return run


# -- the bound and matrixprop --------------------------------------------------------------
def gemm_bound(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """Only the matrix products of the epoch's steps (see :mod:`benchmarks.gemm`)."""
    plan = GemmPlan.for_network(case.sizes, case.batch, train=case.train, dtype=case.dtype,
                                seed=seed)
    steps = len(X) // case.batch
    return _timed(steps * case.batch, lambda: plan.run(steps), plan.flops * steps)


def matrixprop_train(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0,
                     accelerate="auto") -> Run:
    """One call of ``mp.fit(..., epochs=1)``: the whole call is timed, input checks included.

    ``accelerate="auto"`` is the fastest path installed (the compiled epochs with numba);
    ``False`` the pure NumPy engine.
    """
    net = build_network(case, seed)
    optimizer = make_optimizer(case)
    X = _in_dtype(case, X)
    epochs = count(seed)
    return _timed(len(X), lambda: mp.fit(
        net, X, y, loss=case.loss, optimizer=optimizer, batch_size=case.batch, epochs=1,
        shuffle=True, seed=next(epochs), accelerate=accelerate))


def matrixprop_numpy_train(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """:func:`matrixprop_train` on the pure NumPy engine (no compiled epochs)."""
    return matrixprop_train(case, X, y, seed, accelerate=False)


def matrixprop_predict(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0,
                       accelerate="auto") -> Run:
    """``net.predict(X, batch_size=case.batch)``: the outputs, softmax included (compiled when
    numba is installed; ``accelerate=False``: the NumPy engine)."""
    net = build_network(case, seed)
    X = _in_dtype(case, X)
    return _timed(len(X), lambda: net.predict(X, batch_size=case.batch, accelerate=accelerate))


def matrixprop_numpy_predict(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """:func:`matrixprop_predict` on the NumPy engine."""
    return matrixprop_predict(case, X, y, seed, accelerate=False)


def _in_dtype(case: Case, X: np.ndarray) -> np.ndarray:
    """``X`` in the case's dtype, converted once at set-up (never inside a timed epoch)."""
    return np.ascontiguousarray(X, dtype=case.dtype)


# -- PyTorch ---------------------------------------------------------------------------------
def _torch_model(case: Case, seed: int):
    """``nn.Sequential`` of Linear layers and activations, with the shared initial weights.

    A cross-entropy network ends on its logits (``F.cross_entropy`` fuses the softmax). The
    layers hold the case's dtype.
    """
    import torch

    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[case.activation]
    state = initial_state(case, seed)
    modules = []
    for k, (n_in, n_out) in enumerate(pairwise(case.sizes)):
        linear = torch.nn.Linear(n_in, n_out, dtype=getattr(torch, case.dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(state[f"layers.{k}.weight"]))
            linear.bias.copy_(torch.from_numpy(state[f"layers.{k}.bias"]))
        modules.append(linear)
        if k < len(case.sizes) - 2 or case.loss == "half_sse":
            modules.append(act())
    return torch.nn.Sequential(*modules)


def _one_hot(y: np.ndarray, dtype="float32") -> np.ndarray:
    return np.eye(N_CLASSES, dtype=dtype)[y]


def torch_optimizer(case: Case, parameters):
    """The ``torch.optim`` optimizer of ``case``, with the settings matrixprop's run uses."""
    import torch

    kind, params = OPTIMIZERS[case.optimizer]
    return getattr(torch.optim, kind)(parameters, **params)


def torch_train(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """A PyTorch training loop: ``randperm``, gather, zero_grad, forward, backward, step."""
    import torch
    import torch.nn.functional as F

    model = _torch_model(case, seed)
    optimizer = torch_optimizer(case, model.parameters())
    generator = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(_in_dtype(case, X))
    if case.loss == "half_sse":  # the sum over outputs and the batch, halved, over B
        targets = torch.from_numpy(_one_hot(y, case.dtype))

        def loss_fn(out, t):
            return F.mse_loss(out, t, reduction="sum") * (0.5 / out.shape[0])
    else:
        targets, loss_fn = torch.from_numpy(y.astype(np.int64)), F.cross_entropy
    n, B = len(X), case.batch

    def epoch() -> float:
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, B):
            idx = order[start:start + B]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), targets[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total

    return _timed(n, epoch)


def torch_predict(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """The forward pass under ``torch.no_grad()``, batch by batch, softmax included."""
    import torch

    model = _torch_model(case, seed)
    Xt = torch.from_numpy(_in_dtype(case, X))
    out = torch.empty((len(X), case.sizes[-1]), dtype=Xt.dtype)
    n, B = len(X), case.batch

    def epoch() -> None:
        with torch.no_grad():
            for start in range(0, n, B):
                out[start:start + B] = torch.softmax(model(Xt[start:start + B]), dim=1)

    return _timed(n, epoch)


# -- scikit-learn ----------------------------------------------------------------------------
def sklearn_train(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """``MLPClassifier(max_iter=1, solver=..., ...).fit``: one epoch of the case's optimizer.

    scikit-learn's classifier always ends on softmax (logistic for two classes) with log-loss,
    so the half-SSE case runs with that output; ``fit`` also validates the input and draws the
    initial weights, as a user's call does. It computes in the dtype of ``X``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    seeds = count(seed)
    X = _in_dtype(case, X)
    kind, opt = OPTIMIZERS[case.optimizer]
    solver = dict(solver="adam") if kind == "Adam" else dict(
        solver="sgd", momentum=opt.get("momentum", 0.0),
        nesterovs_momentum=opt.get("nesterov", False))
    params = dict(
        hidden_layer_sizes=case.sizes[1:-1],
        activation={"sigmoid": "logistic", "relu": "relu"}[case.activation],
        batch_size=case.batch, learning_rate_init=opt["lr"], shuffle=True, alpha=0.0,
        max_iter=1, **solver,
    )

    def epoch() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            MLPClassifier(**params, random_state=next(seeds)).fit(X, y)

    return _timed(len(X), epoch)


# -- JAX -------------------------------------------------------------------------------------
def _jax_step(case: Case):
    """The jittable SGD step ``(params, xb, tb) -> (params, loss)`` and the targets' maker."""
    if (case.optimizer, case.dtype) != ("sgd", "float32"):
        raise ValueError(f"the JAX contenders run plain SGD in float32 only, not "
                         f"{case.optimizer} in {case.dtype}")
    import jax
    import jax.numpy as jnp

    act = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[case.activation]
    last = len(case.sizes) - 2

    def loss_fn(params, xb, tb):
        a = xb
        for k, (W, b) in enumerate(params):
            z = a @ W.T + b
            a = act(z) if k < last else z
        if case.loss == "half_sse":
            return 0.5 * jnp.sum((act(z) - tb) ** 2) / xb.shape[0]
        logp = jax.nn.log_softmax(z)
        return -jnp.mean(jnp.take_along_axis(logp, tb[:, None], axis=1))

    def step(params, xb, tb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, tb)
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), loss

    def targets(y: np.ndarray) -> np.ndarray:
        return _one_hot(y) if case.loss == "half_sse" else y.astype(np.int32)

    return step, targets


def _jax_params(case: Case, seed: int):
    import jax.numpy as jnp

    state = initial_state(case, seed)
    return [(jnp.asarray(state[f"layers.{k}.weight"]), jnp.asarray(state[f"layers.{k}.bias"]))
            for k in range(len(case.sizes) - 1)]


def jax_step(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """The step jitted once and called per batch from Python; batches gathered on the host."""
    import jax

    step, make_targets = _jax_step(case)
    step = jax.jit(step, donate_argnums=0)
    T = make_targets(y)
    params = [_jax_params(case, seed)]  # a cell the epochs update
    rng = np.random.default_rng(seed)
    n, B = len(X), case.batch

    def epoch() -> float:
        order = rng.permutation(n)
        p, losses = params[0], []
        for start in range(0, n, B):
            idx = order[start:start + B]
            p, loss = step(p, X[idx], T[idx])
            losses.append(loss)
        params[0] = jax.block_until_ready(p)
        return float(sum(losses))

    return _timed(n, epoch)


def jax_scan(case: Case, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Run:
    """The whole epoch jitted as one ``lax.scan`` over the batches; data on the device."""
    import jax

    step, make_targets = _jax_step(case)

    def run_epoch(params, X, T, order):
        def body(p, idx):
            return step(p, X[idx], T[idx])

        params, losses = jax.lax.scan(body, params, order)
        return params, losses.sum()

    run_epoch = jax.jit(run_epoch, donate_argnums=0)
    Xd, Td = jax.device_put(X), jax.device_put(make_targets(y))
    params = [_jax_params(case, seed)]
    rng = np.random.default_rng(seed)
    n, B = len(X), case.batch

    def epoch() -> float:
        order = rng.permutation(n).astype(np.int32).reshape(n // B, B)
        params[0], total = jax.block_until_ready(run_epoch(params[0], Xd, Td, order))
        return float(total)

    return _timed(n, epoch)
