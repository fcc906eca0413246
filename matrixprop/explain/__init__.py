"""Worked examples of backpropagation: every number of one forward and backward pass.

>>> import matrixprop as mp
>>> net = mp.MLP([2, 2, 2], activation="sigmoid", seed=0)
>>> e = mp.explain(net, [0.05, 0.1], [0.01, 0.99], loss="half_sse")
>>> print(e.to_text())          # or e.to_markdown(), e.to_json()

See ``docs/explain.md`` for what each section shows.
"""

from .compute import Explanation, LayerStep, explain, random_sample
from .neuron import NeuronView

__all__ = ["Explanation", "LayerStep", "NeuronView", "explain", "random_sample"]
