"""scikit-learn's two update rules, as matrixprop optimizers.

* ``"sgd"``: PyTorch's SGD is the same rule while the rate is constant; scikit-learn's velocity
  holds steps (rate times gradient) rather than gradients, so when its rate changes
  (``"invscaling"``, ``"adaptive"``) the momentum buffer is rescaled to match.
* ``"adam"``: scikit-learn adds ``epsilon`` to ``sqrt(v)`` before bias correction, PyTorch to
  ``sqrt(v_hat)``; the two agree when PyTorch's ``eps`` is ``epsilon / sqrt(1 - beta_2^t)``.
"""

from __future__ import annotations

import copy

from ..optimizers import SGD, Adam, Optimizer

__all__ = ["SklearnSGD", "SklearnAdam", "make_optimizer"]


class SklearnSGD(SGD):
    """SGD with (Nesterov) momentum whose velocity follows scikit-learn's rate changes."""

    def set_lr_scale(self, factor: float) -> None:
        old = self.lr_scale
        super().set_lr_scale(factor)
        buffer = getattr(self, "state", {}).get("momentum_buffer")
        if buffer is not None and old != self.lr_scale:
            buffer *= old / self.lr_scale  # keep the velocity -lr * buffer unchanged


class SklearnAdam(Adam):
    """Adam with scikit-learn's placement of ``epsilon``."""

    eps_before_bias_correction = True


def make_optimizer(est) -> Optimizer:
    """The optimizer of a fit: a copy of ``est.optimizer`` if given, else the solver's rule."""
    if est.optimizer is not None:
        return copy.deepcopy(est.optimizer)
    if est.solver == "sgd":
        return SklearnSGD(lr=est.learning_rate_init, momentum=est.momentum,
                          nesterov=bool(est.nesterovs_momentum and est.momentum > 0))
    return SklearnAdam(lr=est.learning_rate_init, betas=(est.beta_1, est.beta_2),
                       eps=est.epsilon)
