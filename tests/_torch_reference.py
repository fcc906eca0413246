"""Test helpers: the float64 PyTorch twin of a matrixprop network, and the losses' definitions.

Everything here is written from the definitions (the README's equations, ``matrixprop/losses.py``),
not from the engine, so that the tests compare two independent computations.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

import matrixprop as mp

# every registered activation: a new one fails here until it has its PyTorch twin below
HIDDEN_ACTIVATIONS = tuple(cls.name for cls in mp.activations.classes() if not cls.output_only)
OUTPUT_ACTIVATIONS = HIDDEN_ACTIVATIONS + ("softmax",)
REDUCTIONS = ("mean", "sum", "batchmean")
LEGAL_PAIRS = (
    [(output, "mse") for output in OUTPUT_ACTIVATIONS]
    + [(output, "half_sse") for output in OUTPUT_ACTIVATIONS]
    + [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")]
)
ILLEGAL_PAIRS = [
    ("sigmoid", "cross_entropy"),
    ("identity", "cross_entropy"),
    ("softmax", "binary_cross_entropy"),
    ("identity", "binary_cross_entropy"),
]
KINKED = ("relu", "leaky_relu")  # derivative jumps at z = 0
WIDTHS = (4, 5, 3, 4, 5)  # input and hidden widths, first ``depth`` of them used


def torch_activation(activation: mp.activations.Activation):
    """The PyTorch function computing the same ``f`` as a matrixprop activation."""
    params = activation.config()
    name = params.pop("name")
    functions = {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, params.get("negative_slope", 0.01)),
        "elu": lambda z: F.elu(z, params.get("alpha", 1.0)),
        # matrixprop's softplus never switches to the identity: move torch's switch out of reach
        "softplus": lambda z: F.softplus(z, beta=1.0, threshold=1e9),
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "silu": F.silu,
        "softmax": lambda z: torch.softmax(z, dim=1),
    }
    return functions[name]


class TorchTwin(torch.nn.Module):
    """A float64 ``torch.nn.Module`` with the layers, activations and weights of ``net``.

    Its parameters are named ``layers.{i}.weight`` / ``layers.{i}.bias`` like matrixprop's
    ``state_dict`` keys.
    """

    def __init__(self, net: mp.Network):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(layer.n_in, layer.n_out, bias=layer.bias, dtype=torch.float64)
            for layer in net.layers
        )
        self.functions = [torch_activation(layer.activation) for layer in net.layers]
        self.load_state_dict(
            {name: torch.tensor(value, dtype=torch.float64)
             for name, value in net.state_dict().items()}
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.pre_activations(X)[1]

    def pre_activations(self, X: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer's ``Z`` and the output ``A``."""
        zs, A = [], X
        for linear, f in zip(self.layers, self.functions, strict=True):
            zs.append(linear(A))
            A = f(zs[-1])
        return zs, A

    def numpy_state(self) -> OrderedDict[str, np.ndarray]:
        """The parameters as NumPy arrays, by name."""
        return OrderedDict((k, v.detach().numpy().copy()) for k, v in self.state_dict().items())


def _terms(A: torch.Tensor, Y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample terms (shape (B,)) or per-element terms (shape (B, n_out))."""
    if loss == "half_sse":
        return 0.5 * ((A - Y) ** 2).sum(dim=1)
    if loss == "mse":
        return F.mse_loss(A, Y, reduction="none")
    if loss == "cross_entropy":
        return -(Y * torch.log(A)).sum(dim=1)
    if loss == "binary_cross_entropy":
        return F.binary_cross_entropy(A, Y, reduction="none")
    raise ValueError(f"no reference for loss {loss!r}")


def torch_loss(A, Y, loss: str, reduction: str, sample_weight=None) -> torch.Tensor:
    """The loss by its definition: weighted sum of terms over the reduction's count.

    ``mean`` divides by the number of terms (samples, or elements for mse and bce),
    ``batchmean`` by the number of samples, ``sum`` by 1; with weights the sample count is
    ``sum(w)``.
    """
    terms = _terms(A, Y, loss)
    w = torch.ones(A.shape[0], dtype=A.dtype) if sample_weight is None else sample_weight
    weighted = w[:, None] * terms if terms.ndim == 2 else w * terms
    count = {"sum": 1.0, "batchmean": w.sum(), "mean": w.sum() * terms[0].numel()}[reduction]
    return weighted.sum() / count


def as_targets(Y: np.ndarray, n_outputs: int) -> np.ndarray:
    """Integer labels as one-hot float64 rows, other targets as float64."""
    Y = np.asarray(Y)
    if Y.ndim == 1 and np.issubdtype(Y.dtype, np.integer):
        return np.eye(n_outputs)[Y]
    return np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)


def torch_loss_and_gradients(net: mp.Network, X, Y, loss: str, reduction: str,
                             sample_weight=None) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and autograd gradients of the PyTorch twin of ``net``, by parameter name."""
    model = TorchTwin(net)
    Yt = torch.tensor(as_targets(Y, net.n_outputs))
    w = None if sample_weight is None else torch.tensor(sample_weight, dtype=torch.float64)
    value = torch_loss(model(torch.tensor(X, dtype=torch.float64)), Yt, loss, reduction, w)
    value.backward()
    return value.item(), {name: p.grad.numpy().copy() for name, p in model.named_parameters()}


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """``max|ours - reference| / max|reference|``."""
    scale = np.max(np.abs(reference))
    return float(np.max(np.abs(np.asarray(ours) - reference)) / max(scale, 1e-300))


def make_targets(rng: np.random.Generator, n: int, n_outputs: int, loss: str) -> np.ndarray:
    """Targets that suit ``loss``: probability rows for cross_entropy, values in (0, 1) for
    binary cross-entropy, real numbers for the squared errors."""
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(n_outputs), size=n)
    if loss == "binary_cross_entropy":
        return rng.uniform(0.05, 0.95, size=(n, n_outputs))
    return rng.normal(size=(n, n_outputs))


def make_problem(hidden: str, output: str, loss: str, depth: int, *, seed: int = 0,
                 n: int = 7, n_outputs: int = 3, away_from_kinks: bool = True):
    """A float64 MLP with ``depth`` layers, inputs ``X`` and suitable targets ``Y``.

    With ``away_from_kinks`` the seed is advanced until no pre-activation of a kinked
    activation lies within 1e-3 of its kink (so finite differences never straddle it).
    """
    sizes = [*WIDTHS[:depth], n_outputs]
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt])
        net = mp.MLP(sizes, activation=hidden, output_activation=output,
                     seed=int(rng.integers(2**31)), dtype="float64")
        X = rng.normal(size=(n, sizes[0]))
        Y = make_targets(rng, n, n_outputs, loss)
        if not away_from_kinks or _clear_of_kinks(net, X):
            return net, X, Y
    raise RuntimeError("no draw kept the pre-activations away from the kinks")


def _clear_of_kinks(net: mp.Network, X: np.ndarray) -> bool:
    with torch.no_grad():
        zs, _ = TorchTwin(net).pre_activations(torch.tensor(X))
    return all(
        layer.activation.name not in KINKED or float(z.abs().min()) > 1e-3
        for layer, z in zip(net.layers, zs, strict=True)
    )
