"""Optimizers: the article's update ``w <- w - alpha_w dL/dw``, with PyTorch's names and formulas.

Every optimizer here is one general rule applied to the network's flat parameter buffer::

    p <- p - lr * direction(g)

Plain SGD's direction is the gradient itself; momentum, Adagrad, RMSprop and Adam each compute a
different direction from the gradients' history. The learning rate ``lr`` is the article's
``alpha_w``: a scalar, a mapping from parameter name (``"layers.0.weight"``) to a scalar or an
array broadcastable to that parameter, or a flat array with one rate per weight (as
``net.params``). A zero rate freezes its weight.

Adaptive optimizers (Adagrad, RMSprop, Adam, AdamW) are per-weight learning rates learned from
the gradients' history: each weight's step is scaled by the inverse root of its own running
squared gradient.

Each rule declares its compiled form beside it: ``compiled_rule``, the name of the compiled
engine's twin of ``_direction``, and :meth:`Optimizer.compiled_hyper`, the hyper-parameters that
twin reads, by name. A subclass that changes the rule without declaring a twin of its own runs
on the NumPy engine (:meth:`Optimizer.compiled_form`).

Optimizers are created without parameters (``SGD(lr=0.1)``) and attach to a network on their
first step, or explicitly with :meth:`Optimizer.setup`. ``step`` may overwrite the gradient
buffer (weight decay is added to it in place).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from ._validation import non_negative, registry_entry

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "get", "names"]


class Optimizer:
    """Base class: the general rule ``p <- p - lr * direction(g)``."""

    name = ""
    _state_names: tuple[str, ...] = ()
    decoupled_weight_decay = False
    compiled_rule: str | None = None  # the compiled engine's twin of this class's _direction

    def __init__(self, lr=0.01, weight_decay: float = 0.0):
        self.lr = _check_lr(lr)
        self.weight_decay = non_negative(weight_decay, "weight_decay")
        self.t = 0  # steps taken
        self.lr_scale = 1.0  # set by learning-rate schedules
        self._params: np.ndarray | None = None

    # -- binding to a network --------------------------------------------------------------
    def setup(self, net) -> None:
        """Attach to ``net``: resolve the learning rate and allocate the state buffers.

        Calling it again for the same network keeps the state (training continues).
        """
        if self._params is net.params:
            return
        self._net = net
        self._params, self._grads = net.params, net.grads
        self._lr_base = _resolve_lr(self.lr, net)
        self._lr_now = self._lr_base if np.ndim(self._lr_base) == 0 else self._lr_base.copy()
        self.set_lr_scale(self.lr_scale)
        self._scratch = None  # allocated by the first step: compiled epochs never need it
        self.state = {name: np.zeros_like(net.params) for name in self._state_names}
        self._init_state()
        self.t = 0

    def _init_state(self) -> None:
        """Initial values of state buffers other than zero."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._params is not None:  # joblib loads arrays shared with the network as copies
            self._params, self._grads = self._net.params, self._net.grads

    def set_lr_scale(self, factor: float) -> None:
        """Multiply the base learning rate(s) by ``factor`` from the next step on."""
        self.lr_scale = float(factor)
        if self._params is None:
            return
        if np.ndim(self._lr_base) == 0:
            self._lr_now = self._lr_base * self.lr_scale
        else:
            np.multiply(self._lr_base, self.lr_scale, out=self._lr_now)

    @property
    def current_lr(self):
        """The learning rate the next step uses (a float, or a flat per-weight array)."""
        return self._lr_now if self._params is not None else self.lr * self.lr_scale

    # -- the update ------------------------------------------------------------------------
    def step(self, net=None) -> None:
        """One update of the attached network's parameters from its gradients."""
        if net is not None:
            self.setup(net)
        if self._params is None:
            raise RuntimeError("the optimizer has no network: call setup(net) or step(net)")
        if self._scratch is None:
            self._scratch = np.empty_like(self._params)
        p, g, s, lr = self._params, self._grads, self._scratch, self._lr_now
        self.t += 1
        if self.weight_decay and self.decoupled_weight_decay:
            if np.ndim(lr) == 0:
                p *= 1.0 - lr * self.weight_decay  # p <- p (1 - lr wd), AdamW's decoupled decay
            else:
                np.multiply(lr, -self.weight_decay, out=s)
                s += 1.0
                p *= s
        elif self.weight_decay:
            np.multiply(p, self.weight_decay, out=s)
            g += s  # g <- g + wd p, PyTorch's L2 form
        d = self._direction(g, s)
        np.multiply(d, lr, out=s)
        p -= s  # p <- p - lr * direction

    def _direction(self, g: np.ndarray, s: np.ndarray) -> np.ndarray:
        """The update direction for gradient ``g``; may use ``s`` as scratch and return it."""
        return g

    # -- the compiled form -----------------------------------------------------------------
    @classmethod
    def compiled_form(cls) -> str | None:
        """The compiled twin of this class's update rule: the ``compiled_rule`` declared by
        the class that defines its ``_direction``; None when a subclass redefines ``step``,
        or ``_direction`` without declaring a twin of its own."""
        for klass in cls.__mro__:
            if "step" in vars(klass) and klass is not Optimizer:
                return None
            if "_direction" in vars(klass):
                return vars(klass).get("compiled_rule")
        return None

    def compiled_hyper(self) -> dict[str, float]:
        """The hyper-parameters the compiled rule reads, by name, as numbers."""
        return {"weight_decay": self.weight_decay,
                "decoupled": float(self.decoupled_weight_decay)}

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's step count and state buffers (copies), for checkpoints."""
        state = getattr(self, "state", {})
        return {"t": self.t, "lr_scale": self.lr_scale,
                **{name: buf.copy() for name, buf in state.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict` output (the optimizer must be set up first)."""
        if self._params is None:
            raise RuntimeError("call setup(net) before load_state_dict")
        for name in self._state_names:
            value = np.asarray(state[name])
            if value.shape != self._params.shape:
                raise ValueError(f"optimizer state {name!r} has shape {value.shape}, "
                                 f"expected {self._params.shape}")
            self.state[name][...] = value
        self.t = int(state["t"])
        self.set_lr_scale(float(state.get("lr_scale", 1.0)))

    def config(self) -> dict:
        """The optimizer's name and hyper-parameters (a scalar ``lr`` only)."""
        lr = self.lr if isinstance(self.lr, float) else "per-weight"
        return {"name": self.name, "lr": lr, **self._hyper()}

    def _hyper(self) -> dict:
        return {"weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({items})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, as ``torch.optim.SGD``.

    With momentum ``mu`` and dampening ``tau``: ``buf <- mu buf + (1 - tau) g`` (``buf <- g`` on
    the first step), direction ``buf``, or ``g + mu buf`` with Nesterov.
    """

    name = "sgd"
    compiled_rule = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(lr, weight_decay)
        self.momentum = non_negative(momentum, "momentum")
        self.dampening = non_negative(dampening, "dampening")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
        self._state_names = ("momentum_buffer",) if self.momentum else ()

    def _direction(self, g, s):
        if not self.momentum:
            return g
        buf = self.state["momentum_buffer"]
        if self.t == 1:
            np.copyto(buf, g)
        else:
            buf *= self.momentum
            if self.dampening:
                np.multiply(g, 1.0 - self.dampening, out=s)
                buf += s
            else:
                buf += g
        if not self.nesterov:
            return buf
        np.multiply(buf, self.momentum, out=s)
        s += g
        return s

    def _hyper(self):
        return {"momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def compiled_hyper(self):
        return {**super().compiled_hyper(), "momentum": self.momentum,
                "dampening": self.dampening, "nesterov": float(self.nesterov)}


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``: ``sum <- sum + g^2``, direction
    ``g / (sqrt(sum) + eps) / (1 + (t - 1) lr_decay)``."""

    name = "adagrad"
    compiled_rule = "adagrad"
    _state_names = ("sum",)

    def __init__(self, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10):
        super().__init__(lr, weight_decay)
        self.lr_decay = non_negative(lr_decay, "lr_decay")
        self.initial_accumulator_value = non_negative(
            initial_accumulator_value, "initial_accumulator_value")
        self.eps = non_negative(eps, "eps")

    def _init_state(self):
        self.state["sum"][...] = self.initial_accumulator_value

    def _direction(self, g, s):
        acc = self.state["sum"]
        np.multiply(g, g, out=s)
        acc += s
        np.sqrt(acc, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        if self.lr_decay:
            s *= 1.0 / (1.0 + (self.t - 1) * self.lr_decay)
        return s

    def _hyper(self):
        return {"lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps}

    def compiled_hyper(self):
        return {**super().compiled_hyper(), "eps": self.eps, "lr_decay": self.lr_decay}


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``: ``v <- alpha v + (1 - alpha) g^2``, direction
    ``g / (sqrt(v) + eps)`` (centered: ``v - mean(g)^2`` under the root; with momentum the
    direction is accumulated in a buffer)."""

    name = "rmsprop"
    compiled_rule = "rmsprop"

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(lr, weight_decay)
        self.alpha = _unit(alpha, "alpha")
        self.eps = non_negative(eps, "eps")
        self.momentum = non_negative(momentum, "momentum")
        self.centered = bool(centered)
        self._state_names = ("square_avg",) + (("grad_avg",) if centered else ()) + (
            ("momentum_buffer",) if self.momentum else ())

    def _direction(self, g, s):
        v = self.state["square_avg"]
        v *= self.alpha
        np.multiply(g, g, out=s)
        s *= 1.0 - self.alpha
        v += s
        if self.centered:
            ga = self.state["grad_avg"]
            ga *= self.alpha
            np.multiply(g, 1.0 - self.alpha, out=s)
            ga += s
            np.multiply(ga, ga, out=s)
            np.subtract(v, s, out=s)
            np.sqrt(s, out=s)
        else:
            np.sqrt(v, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        if not self.momentum:
            return s
        buf = self.state["momentum_buffer"]
        buf *= self.momentum
        buf += s
        return buf

    def _hyper(self):
        return {"alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def compiled_hyper(self):
        return {**super().compiled_hyper(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum, "centered": float(self.centered)}


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    direction ``m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)``. ``weight_decay`` is L2 added to
    the gradient (use :class:`AdamW` for decoupled decay)."""

    name = "adam"
    compiled_rule = "adam"
    _state_names = ("exp_avg", "exp_avg_sq")
    # True: eps is added to sqrt(v) before the bias correction (scikit-learn's form), which is
    # eps / sqrt(1 - b2^t) added after it
    eps_before_bias_correction = False

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_unit(betas[0], "betas[0]"), _unit(betas[1], "betas[1]"))
        self.eps = non_negative(eps, "eps")

    def _direction(self, g, s):
        b1, b2 = self.betas
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        m *= b1
        np.multiply(g, 1.0 - b1, out=s)
        m += s
        v *= b2
        np.multiply(g, g, out=s)
        s *= 1.0 - b2
        v += s
        np.sqrt(v, out=s)
        correction = 1.0 / math.sqrt(1.0 - b2**self.t)
        s *= correction
        s += self.eps * correction if self.eps_before_bias_correction else self.eps
        np.divide(m, s, out=s)
        s *= 1.0 / (1.0 - b1**self.t)  # m_hat / (sqrt(v_hat) + eps)
        return s

    def _hyper(self):
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

    def compiled_hyper(self):
        return {**super().compiled_hyper(), "beta1": self.betas[0], "beta2": self.betas[1],
                "eps": self.eps,
                "eps_before_bias_correction": float(self.eps_before_bias_correction)}


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: ``p <- p (1 - lr wd)`` before
    the Adam step."""

    name = "adamw"
    decoupled_weight_decay = True

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas, eps, weight_decay)


_REGISTRY = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam, AdamW)}


def names() -> list[str]:
    """The names :func:`get` accepts."""
    return sorted(_REGISTRY)


def get(spec, **params) -> Optimizer:
    """An optimizer from a name (``get("sgd", lr=0.1)``), a config dict, or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    cls, params = registry_entry(spec, "optimizer", _REGISTRY, params=params)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"optimizer {cls.name!r}: {exc}") from None


# -- validation ----------------------------------------------------------------------------
def _unit(value, name: str) -> float:
    value = non_negative(value, name)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def _check_lr(lr):
    """A scalar rate must be > 0; an array may hold zeros but no negative or non-finite value."""
    if isinstance(lr, Mapping):
        for name, value in lr.items():
            _check_lr_array(value, f"lr[{name!r}]")
        return dict(lr)  # here a rate of 0 freezes a whole parameter
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        return float(lr)
    array = _check_lr_array(lr, "lr")
    if array.ndim == 0:
        if array == 0:
            raise ValueError("lr must be a finite number > 0, got 0")
        return float(array)
    return array


def _check_lr_array(value, name: str) -> np.ndarray:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite rates >= 0 (0 freezes a weight)")
    return array


def _resolve_lr(lr, net):
    """The rate as a float, or a flat array aligned with ``net.params``."""
    if isinstance(lr, float):
        return lr
    flat = np.empty(net.params.size, dtype=net.dtype)
    if isinstance(lr, dict):
        unknown = sorted(set(lr) - set(net.parameter_slices()) - {"default"})
        missing = [n for n in net.parameter_slices() if n not in lr and "default" not in lr]
        if unknown or missing:
            raise ValueError(f"lr mapping: unknown names {unknown}, missing names {missing} "
                             "(add a 'default' entry for the rest)")
        for name, (where, shape) in net.parameter_layout().items():
            rate = lr.get(name, lr.get("default"))
            try:
                flat[where] = np.broadcast_to(rate, shape).reshape(-1)
            except ValueError:
                raise ValueError(f"lr[{name!r}] of shape {np.shape(rate)} does not broadcast "
                                 f"to the parameter's shape {shape}") from None
        return flat
    if lr.size != net.params.size:
        raise ValueError(f"an lr array must have one rate per parameter ({net.params.size}), "
                         f"got shape {lr.shape}; use a mapping for per-layer rates")
    flat[...] = lr.reshape(-1)
    return flat
