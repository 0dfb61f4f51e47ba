"""The training step: gradients, the optimizer's update scaled by the learning-rate schedule,
and its application, as one pure function built from the core (``train_step``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fnn import optimizers
from fnn.model import grads
from fnn.tree import Params, apply_updates, ravel


class TrainingDiverged(RuntimeError):
    """The training loss or a gradient became non-finite (or Eve's loss feedback failed).
    ``params`` and ``history`` hold the last good parameters and the history so far, when
    ``fit`` raised it."""

    def __init__(self, message: str, *, params: Params | None = None, history=None):
        super().__init__(message)
        self.params, self.history = params, history


def cosine_decay(step: int, total: int) -> float:
    """The learning-rate multiplier of update ``step + 1`` of ``total`` under cosine decay to
    zero, (1 + cos(pi step / total)) / 2 (Loshchilov & Hutter, "SGDR", ICLR 2017, eq. 5
    without restarts; ``optax.cosine_decay_schedule`` with alpha 0 and
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total, eta_min=0)`` stepped per update).
    """
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def constant(step: int, total: int) -> float:
    """The multiplier of a constant learning rate: 1."""
    return 1.0


# lr_schedule -> the learning-rate multiplier of update ``step + 1`` of ``total``
SCHEDULES: dict[str, Callable[[int, int], float]] = {"constant": constant, "cosine": cosine_decay}


def scale_updates(updates: Params, factor: float) -> Params:
    """``updates`` times ``factor``, as a new tree. Every fnn optimizer's update is proportional
    to its learning rate, so this is the update at learning rate ``factor * lr``."""
    flat, layout = ravel(updates)
    return layout.unravel(np.multiply(flat, factor))


def all_finite(flat: np.ndarray) -> bool:
    """Whether every value of the 1-D ``flat`` is finite: one BLAS dot product (a non-finite
    value makes it non-finite), and the full check only when that overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.dot(flat, flat))
    return math.isfinite(total) or bool(np.isfinite(flat).all())


def train_step(
    optimizer: optimizers.Optimizer, *, activation: str, loss: str, dropout: float = 0.0
) -> Callable:
    """A step ``(params, opt_state, xb, yb, rng=None, lr_scale=1.0) -> (params, opt_state,
    loss)``: gradients, the optimizer's update (given the loss, for Eve), scaled by
    ``lr_scale`` (a learning-rate schedule's multiplier), and its application.

    The step is pure: it never writes its arguments (``rng`` advances, as any generator drawn
    from) and returns new arrays only, so a state can be stepped twice, branched or replayed.

    Raises ``TrainingDiverged`` before any update when the loss or a gradient is not finite,
    so the parameters given are the last good ones.
    """

    def step(params, opt_state, xb, yb, rng=None, lr_scale=1.0):
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
        updates, opt_state = optimizer.update(gradients, opt_state, params, loss=value)
        if lr_scale != 1.0:
            updates = scale_updates(updates, lr_scale)
        return apply_updates(params, updates), opt_state, value

    return step
