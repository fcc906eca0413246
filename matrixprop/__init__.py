"""matrixprop: feed-forward neural networks trained with backpropagation in matrix form.

>>> import matrixprop as mp
>>> net = mp.MLP([2, 2, 1], activation="sigmoid", seed=0)
>>> history = mp.fit(net, X, y, loss="half_sse", optimizer=mp.optimizers.SGD(lr=0.5))
"""

from . import activations, callbacks, distributed, initializers, losses, optimizers, schedules
from ._version import __version__
from .callbacks import Callback, EarlyStopping, ProgressBar
from .explain import explain
from .gradcheck import GradcheckResult, gradcheck
from .interop import from_torch, to_torch
from .io import load, save
from .layers import Dense
from .network import MLP, Network
from .training import History, fit

__all__ = [
    "__version__",
    "MLP",
    "Callback",
    "Dense",
    "EarlyStopping",
    "GradcheckResult",
    "History",
    "Network",
    "ProgressBar",
    "activations",
    "callbacks",
    "distributed",
    "explain",
    "fit",
    "from_torch",
    "gradcheck",
    "initializers",
    "load",
    "losses",
    "optimizers",
    "save",
    "schedules",
    "to_torch",
]
