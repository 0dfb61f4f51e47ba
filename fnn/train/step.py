"""The training step: gradients, the optimizer's update and its application, as one pure
function built from the core (``train_step``); the learning-rate schedules by name."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fnn import optimizers
from fnn.model import grads
from fnn.tree import Params, ravel


class TrainingDiverged(RuntimeError):
    """The training loss or a gradient became non-finite (or Eve's loss feedback failed).
    ``params`` and ``history`` hold the last good parameters and the history so far, when
    ``fit`` raised it."""

    def __init__(self, message: str, *, params: Params | None = None, history=None):
        super().__init__(message)
        self.params, self.history = params, history


def constant(learning_rate: float, total: int) -> float:
    """A constant learning rate: ``learning_rate`` itself."""
    return learning_rate


def cosine(learning_rate: float, total: int) -> Callable[[int], float]:
    """The learning rate of update ``count + 1`` of ``total`` decaying to zero on a cosine,
    ``learning_rate (1 + cos(pi min(count, total) / total)) / 2``
    (``fnn.optimizers.cosine_decay_schedule``: as ``optax.cosine_decay_schedule`` with alpha 0
    and ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total, eta_min=0)`` stepped per
    update)."""
    return optimizers.cosine_decay_schedule(learning_rate, total)


# lr_schedule -> the ``learning_rate`` an optimizer gets: ``fn(learning_rate, total updates)``
SCHEDULES: dict[str, Callable[[float, int], float | Callable[[int], float]]] = {
    "constant": constant,
    "cosine": cosine,
}


def all_finite(flat: np.ndarray) -> bool:
    """Whether every value of the 1-D ``flat`` is finite: one BLAS dot product (a non-finite
    value makes it non-finite), and the full check only when that overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.dot(flat, flat))
    return math.isfinite(total) or bool(np.isfinite(flat).all())


def train_step(
    optimizer: optimizers.Optimizer, *, activation: str, loss: str, dropout: float = 0.0
) -> Callable:
    """A step ``(params, opt_state, xb, yb, rng=None) -> (params, opt_state, loss)``:
    gradients, then the optimizer's update (given the loss, for Eve; a learning-rate schedule
    is the optimizer's own, see ``SCHEDULES``) and its application, ``optimizer.step``.

    The step is pure: it never writes its arguments (``rng`` advances, as any generator drawn
    from) and returns new arrays only, so a state can be stepped twice, branched or replayed.

    Raises ``TrainingDiverged`` before any update when the loss or a gradient is not finite,
    so the parameters given are the last good ones.
    """

    def step(params, opt_state, xb, yb, rng=None):
        value, gradients = grads(
            params, xb, yb, activation=activation, loss=loss, dropout=dropout, rng=rng
        )
        if not math.isfinite(value):
            raise TrainingDiverged(f"the minibatch loss is {value}")
        if not all_finite(ravel(gradients)[0]):
            raise TrainingDiverged(
                f"a gradient is not finite (minibatch loss {value:.4g}): check the inputs for "
                "inf or nan"
            )
        params, opt_state = optimizer.step(gradients, opt_state, params, loss=value)
        return params, opt_state, value

    return step
