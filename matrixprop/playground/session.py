"""One learner's run: the data, the network, and the engine's trainer, stepped an epoch at a time.

Training is :class:`matrixprop.training.Trainer` -- the machinery of :func:`matrixprop.fit` --
run epoch by epoch (``Trainer.run_epoch``), so a run here makes the updates that ``mp.fit`` (and
the equivalent ``matrixprop train`` command) makes with the same settings. It runs NumPy's
engine, for training and for its pictures: the compiled engine (``accelerate``) would stall the
page's first frame for seconds while it compiles, and agrees only up to float32 rounding.
A :class:`Session` is used from a server's worker threads: every method takes its lock.
"""

from __future__ import annotations

import base64
import threading
import time

import numpy as np

from .. import losses, optimizers
from .._trace import layer_values
from ..callbacks import TrainingState
from ..network import MLP
from ..training import Trainer, accuracy
from .backprop import neuron_numbers
from .config import Config
from .datasets import DOMAIN, make_split

__all__ = ["Session"]

OUTPUT_GRID = 48  # the decision map: OUTPUT_GRID x OUTPUT_GRID points
NEURON_GRID = 16  # each neuron's own map
CURVE_POINTS = 101  # the fitted curve of a 1-D regression


class Session:
    """A playground run; see the module docstring.

    Parameters
    ----------
    config : Config, optional
        The settings (default: ``Config()``).
    """

    def __init__(self, config: Config | None = None):
        self.lock = threading.Lock()
        self.target: dict | None = None  # the neuron shown in the page's panel
        self.reset(config or Config())

    # -- set-up ----------------------------------------------------------------------------
    def reset(self, config: Config | None = None) -> None:
        """Start over: new data, network and optimizer from ``config`` (default: the same)."""
        with self.lock:
            config = config or self.config
            split = make_split(config.dataset, config.noise, config.test_fraction, config.seed)
            net = MLP(config.sizes(split.n_features), config.activation,
                      config.output_activation, seed=config.seed)
            optimizer = optimizers.get(config.optimizer, lr=config.lr_mapping())
            trainer = Trainer(net, split.X_train, split.y_train, loss=config.loss,
                              optimizer=optimizer, batch_size=config.batch_size, shuffle=True,
                              seed=config.seed, l2=config.l2, sample_weight=None,
                              gradient_hooks=None, clip_grad_norm=None)
            self.config, self.split, self.net, self.trainer = config, split, net, trainer
            self.loss = losses.get(config.loss)
            self.epoch = 0
            # An open-ended run: ``epochs`` is only what callbacks would read as the total.
            self._state = TrainingState(net, optimizer, 0, trainer.steps_per_epoch, trainer.n,
                                        None)
            self._rate_mark = (time.perf_counter(), 0)
            self.epochs_per_second = 0.0
            if self.target is not None and not self._target_fits(self.target):
                self.target = None

    @property
    def regression(self) -> bool:
        return self.split.regression

    def describe(self) -> dict:
        """The run's settings and data, for the page to draw (sent once per reset)."""
        with self.lock:
            split = self.split
            return {
                "config": self.config.to_dict(),
                "sizes": self.net.sizes,
                "regression": split.regression,
                "domain": DOMAIN,
                "n_train": int(split.X_train.shape[0]),
                "train": {"x": split.X_train.tolist(), "y": split.y_train.tolist()},
                "test": {"x": split.X_test.tolist(), "y": split.y_test.tolist()},
            }

    # -- training --------------------------------------------------------------------------
    def train_for(self, seconds: float, max_epochs: int | None = None) -> int:
        """Train whole epochs until ``seconds`` have passed or ``max_epochs`` are done (at least
        one epoch); return how many.

        Raises FloatingPointError when the loss diverges (the run then needs a reset).
        """
        with self.lock:
            started, count = time.perf_counter(), 0
            while count == 0 or (time.perf_counter() - started < seconds
                                 and (max_epochs is None or count < max_epochs)):
                self._state.epoch = self.epoch
                self.trainer.run_epoch(self._state, ())
                self.epoch += 1
                count += 1
            return count

    def step(self) -> None:
        """One epoch."""
        self.train_for(0.0)

    # -- what the page shows ---------------------------------------------------------------
    def frame(self) -> dict:
        """The run's current state: losses, the output map, every neuron's map, the weights.

        Arrays stay NumPy arrays and a diverged loss stays NaN: serialize with
        :func:`matrixprop.io.to_json`.
        """
        with self.lock:
            net, split = self.net, self.split
            now = time.perf_counter()
            then, epoch_then = self._rate_mark
            if now > then and self.epoch > epoch_then:
                rate = (self.epoch - epoch_then) / (now - then)
                self.epochs_per_second = rate if not self.epochs_per_second else (
                    0.7 * self.epochs_per_second + 0.3 * rate)
            elif self.epoch == epoch_then and now - then > 1.0:
                self.epochs_per_second = 0.0
            if self.epoch != epoch_then or now - then > 1.0:
                self._rate_mark = (now, self.epoch)
            frame = {"epoch": self.epoch, "epochs_per_second": self.epochs_per_second}
            for part, X, y in (("train", split.X_train, split.y_train),
                               ("test", split.X_test, split.y_test)):
                frame[f"{part}_loss"] = net.loss(X, y, self.loss)
                if not split.regression:
                    frame[f"{part}_accuracy"] = accuracy(net.predict(X, accelerate=False), y)
            frame["output"] = self._output_map()
            frame["neurons"] = self._neuron_maps()
            frame["weights"] = [layer.W for layer in net.layers]
            frame["biases"] = [layer.b for layer in net.layers]
            return frame

    def _output_map(self) -> dict:
        if self.regression:
            x = np.linspace(-DOMAIN, DOMAIN, CURVE_POINTS, dtype=np.float32)
            y = self.net.predict(x[:, None], accelerate=False)[:, 0]
            return {"x": x, "y": y}
        return {"grid": OUTPUT_GRID, "values": _encode(np.clip(
            _class_one(self.net.predict(_grid(OUTPUT_GRID), accelerate=False)), 0.0, 1.0))}

    def _neuron_maps(self) -> list[list[dict]]:
        """Each neuron's output over a small grid (a line for 1-D data) as bytes: probabilities
        (sigmoid, softmax) as they are, other outputs divided by their largest size, 0 in the
        middle; ``scale`` is that divisor."""
        X = (np.linspace(-DOMAIN, DOMAIN, NEURON_GRID * 2, dtype=np.float32)[:, None]
             if self.regression else _grid(NEURON_GRID))
        maps = []
        for layer, (_, A) in zip(self.net.layers, layer_values(self.net, X), strict=True):
            A = np.nan_to_num(A, nan=0.0, posinf=0.0, neginf=0.0)
            if layer.activation.name in ("sigmoid", "softmax"):
                scale, shown = np.ones(A.shape[1]), A
            else:
                scale = np.max(np.abs(A), axis=0)
                shown = (A / np.where(scale > 0, scale, 1.0) + 1) / 2
            maps.append([{"scale": float(scale[j]), "values": _encode(shown[:, j])}
                         for j in range(A.shape[1])])
        return maps

    # -- the neuron panel ------------------------------------------------------------------
    def inspect(self, target: dict | None) -> dict | None:
        """Show ``target`` (``layer``, ``neuron``, optional ``weight`` and ``sample``) in the
        panel from now on, or nothing for None; return its numbers."""
        with self.lock:
            if target is not None and not self._target_fits(target):
                raise ValueError(f"no such neuron, weight or sample in this network: {target}")
            self.target = target
        return self.inspection()

    def inspection(self) -> dict | None:
        """The numbers of the neuron being shown, for the current weights (None: none shown)."""
        with self.lock:
            if self.target is None:
                return None
            target, split = self.target, self.split
            sample = target.get("sample", 0)
            layer = target["layer"]
            alpha = self.config.lr * self.config.lr_multipliers[layer - 1]
            numbers = neuron_numbers(self.net, self.loss, split.X_train[sample],
                                     split.y_train[sample], layer, target["neuron"], alpha,
                                     target.get("weight"))
            numbers.update(sample=sample, x=split.X_train[sample].tolist(),
                           y=split.y_train[sample].item(), optimizer=self.config.optimizer)
            return numbers

    def _target_fits(self, target: dict) -> bool:
        """Whether ``target``'s layer, neuron, weight and sample exist (all whole numbers)."""
        sizes = self.net.sizes
        values = [target.get(key) for key in ("layer", "neuron")]
        optional = [target.get("weight", 1), target.get("sample", 0)]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values + optional):
            return False
        layer, neuron = values
        weight, sample = optional
        return (1 <= layer < len(sizes) and 1 <= neuron <= sizes[layer]
                and 1 <= weight <= sizes[layer - 1] and 0 <= sample < self.split.X_train.shape[0])


def _grid(n: int) -> np.ndarray:
    """``n * n`` points over the plotted square, row by row from the top (largest x2) down."""
    ticks = np.linspace(-DOMAIN, DOMAIN, n, dtype=np.float32)
    x1, x2 = np.meshgrid(ticks, ticks[::-1])
    return np.column_stack([x1.ravel(), x2.ravel()])


def _class_one(outputs: np.ndarray) -> np.ndarray:
    """The network's belief in class 1: the second softmax output, or the single output."""
    return outputs[:, 1] if outputs.shape[1] == 2 else outputs[:, 0]


def _encode(values: np.ndarray) -> str:
    """Values in [0, 1] as base64 bytes 0..255 (NaN as the middle)."""
    values = np.nan_to_num(values, nan=0.5)
    return base64.b64encode(np.round(values * 255).astype(np.uint8).tobytes()).decode("ascii")

