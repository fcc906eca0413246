"""matrixprop: feed-forward neural networks trained with backpropagation in matrix form.

>>> import matrixprop as mp
>>> net = mp.MLP([2, 2, 1], activation="sigmoid", seed=0)
>>> history = mp.fit(net, X, y, loss="half_sse", optimizer=mp.optimizers.SGD(lr=0.5))

Where the code speaks of "the article" it means the blog post "Backpropagation - Matrix Form"
(August 5, 2023), whose equations it follows and whose one error it corrects (the README
says which); "the book" is Michael Nielsen's *Neural Networks and Deep Learning* (2015,
http://neuralnetworksanddeeplearning.com), whose networks and costs it reproduces.
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
