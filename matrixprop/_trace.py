"""Every layer's pre-activation and output for a batch, computed by the engine's own layers.

The training loop keeps no per-layer values it does not need (activations computed from their
output overwrite ``Z`` in place). Explanations and diagnostics want to look at them, so this
runs the same :meth:`Dense.forward` on fresh workspaces whose ``A`` is a separate buffer.
"""

from __future__ import annotations

import numpy as np

from .layers import LayerWorkspace
from .network import Network

__all__ = ["layer_values"]


def layer_values(net: Network, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(Z_k, A_k)`` of every layer for a validated batch ``X`` (no dropout), as new arrays.

    Parameters
    ----------
    net : Network
        The network.
    X : ndarray of shape (B, n_inputs)
        A batch already checked and cast to ``net.dtype`` (see ``_validation.inputs``).

    Returns
    -------
    list of (Z, A)
        One pair per layer, each of shape (B, n_out): ``Z = A_prev W^T + b`` and ``A = f(Z)``.
    """
    values, A = [], X
    for layer in net.layers:
        ws = LayerWorkspace(layer, X.shape[0], net.dtype, keep_z=True)
        A = layer.forward(A, ws)
        values.append((ws.Z, A))
    return values
