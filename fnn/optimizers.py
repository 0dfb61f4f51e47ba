"""Optimizers as ``Optimizer(init, update)`` pairs of pure functions over pytrees (as optax).

    state = opt.init(params)
    updates, state = opt.update(grads, state, params, loss=value)
    params = fnn.apply_updates(params, updates)

Updates are already signed (``params + updates`` descends). ``weight_decay`` is coupled L2, as
in ``torch.optim``: ``g <- g + weight_decay * params`` before the rule, on every parameter.
Adding an optimizer is one factory below plus one line in ``OPTIMIZERS``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn.registry import lookup
from fnn.tree import Layout, Params, flatten, layout_of


class Optimizer(NamedTuple):
    """``init(params) -> state`` and
    ``update(grads, state, params, *, loss=None) -> (updates, state)``."""

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]


class LossError(ValueError):
    """An optimizer that needs the loss (Eve) got none, or one it cannot use."""


class EmptyState(NamedTuple):
    """State of a stateless optimizer."""


class MomentumState(NamedTuple):
    velocity: Params


class RMSpropState(NamedTuple):
    second_moment: Params


class AdamState(NamedTuple):
    count: int
    first_moment: Params
    second_moment: Params


class EveState(NamedTuple):
    count: int
    first_moment: Params
    second_moment: Params
    feedback: float  # d_t
    smoothed_loss: float  # f-hat_{t-1}


def _check(name: str, value: float, low: float, high: float = math.inf, *, closed_low=True):
    """``value`` as a Python float if ``low <= value < high`` (``low < value`` if not
    closed_low), else ``ValueError``. Python floats keep float32 state float32 (NEP 50)."""
    bracket = "[" if closed_low else "("
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}), got {value!r}")
    value = float(value)
    above = value >= low if closed_low else value > low
    if not (above and value < high):
        raise ValueError(f"{name} must be in {bracket}{low}, {high}), got {value!r}")
    return value


# Each update below works on flat buffers: ``Layout.pack`` gives the one contiguous array
# behind a pytree (no copy for trees made by fnn), so every equation is a single NumPy call over
# all parameters, and ``Layout.unpack`` hands the results back as pytrees of views. The caller's
# grads and params are never written and the updates are always new arrays; the moment buffers
# of the state are the optimizer's own and are updated in place (as torch.optim does), so a
# state passed to ``update`` must not be used again: continue from the state it returns.


def _gradient(
    grads: Params, params: Params | None, weight_decay: float
) -> tuple[Layout, np.ndarray]:
    """The layout and flat ``grads + weight_decay * params`` (coupled L2, as torch.optim).
    Without weight decay the flat gradient is the caller's buffer: read it, never write it."""
    flat, layout = flatten(grads)
    if weight_decay == 0:
        return layout, flat
    if params is None:
        raise ValueError("weight_decay needs the params: call update(grads, state, params)")
    return layout, flat + weight_decay * layout.pack(params)


def _scaled(layout: Layout, flat: np.ndarray, scale: float) -> Params:
    return layout.unpack(np.multiply(flat, scale))


def _lerp_(old: np.ndarray, target: np.ndarray, weight: float, scratch: np.ndarray) -> np.ndarray:
    """old <- old + weight (target - old) = (1 - weight) old + weight target, in place."""
    np.subtract(target, old, out=scratch)
    scratch *= weight
    old += scratch
    return old


def _adam_step(
    first: np.ndarray, second: np.ndarray, step: float, root_scale: float, eps: float
) -> np.ndarray:
    """-step * first / (root_scale * sqrt(second) + eps), computed as
    -(step / root_scale) * first / (sqrt(second) + eps / root_scale) in four passes."""
    out = np.sqrt(second)
    out += eps / root_scale
    np.divide(first, out, out=out)
    out *= -step / root_scale
    return out


def sgd(learning_rate: float, weight_decay: float = 0.0) -> Optimizer:
    """Plain gradient descent, as ``torch.optim.SGD(lr, momentum=0)``: update = -lr g."""
    learning_rate = _check("learning_rate", learning_rate, 0, closed_low=False)
    weight_decay = _check("weight_decay", weight_decay, 0)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None, *, loss=None):
        layout, g = _gradient(grads, params, weight_decay)
        return _scaled(layout, g, -learning_rate), state

    return Optimizer(init, update)


def momentum(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """Classical (Polyak 1964) momentum, as ``torch.optim.SGD(lr, momentum=mu)``, undamped.

    b_t = mu b_{t-1} + g_t  (b_0 = 0, so b_1 = g_1 as in torch);  update = -lr b_t.
    """
    learning_rate = _check("learning_rate", learning_rate, 0, closed_low=False)
    momentum = _check("momentum", momentum, 0, 1)
    weight_decay = _check("weight_decay", weight_decay, 0)

    def init(params):
        return MomentumState(layout_of(params).zeros())

    def update(grads, state, params=None, *, loss=None):
        layout, g = _gradient(grads, params, weight_decay)
        velocity = layout.pack(state.velocity)
        velocity *= momentum
        velocity += g
        return _scaled(layout, velocity, -learning_rate), MomentumState(layout.unpack(velocity))

    return Optimizer(init, update)


def nag(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """Nesterov momentum in PyTorch's form, ``torch.optim.SGD(lr, momentum=mu, nesterov=True)``
    (Sutskever et al. 2013, rewritten so the parameters are the look-ahead point).

    b_t = mu b_{t-1} + g_t;  update = -lr (g_t + mu b_t).
    """
    learning_rate = _check("learning_rate", learning_rate, 0, closed_low=False)
    momentum = _check("momentum", momentum, 0, 1)
    weight_decay = _check("weight_decay", weight_decay, 0)

    def init(params):
        return MomentumState(layout_of(params).zeros())

    def update(grads, state, params=None, *, loss=None):
        layout, g = _gradient(grads, params, weight_decay)
        velocity = layout.pack(state.velocity)
        velocity *= momentum
        velocity += g
        step = np.multiply(velocity, momentum)
        step += g
        step *= -learning_rate
        return layout.unpack(step), MomentumState(layout.unpack(velocity))

    return Optimizer(init, update)


def rmsprop(
    learning_rate: float, beta: float = 0.9, epsilon: float = 1e-8, weight_decay: float = 0.0
) -> Optimizer:
    """RMSprop (Hinton, Coursera lecture 6e, 2012), as ``torch.optim.RMSprop(lr, alpha=beta,
    eps=epsilon)``: v_t = beta v_{t-1} + (1 - beta) g_t^2;  update = -lr g_t / (sqrt(v_t) + eps),
    epsilon outside the square root, no bias correction. (The default beta = 0.9 is Hinton's;
    torch's alpha defaults to 0.99.)
    """
    learning_rate = _check("learning_rate", learning_rate, 0, closed_low=False)
    beta = _check("beta", beta, 0, 1)
    epsilon = _check("epsilon", epsilon, 0, closed_low=False)
    weight_decay = _check("weight_decay", weight_decay, 0)

    def init(params):
        return RMSpropState(layout_of(params).zeros())

    def update(grads, state, params=None, *, loss=None):
        layout, g = _gradient(grads, params, weight_decay)
        scratch = np.multiply(g, g)
        second = _lerp_(layout.pack(state.second_moment), scratch, 1 - beta, scratch)
        updates = _adam_step(g, second, learning_rate, 1.0, epsilon)
        return layout.unpack(updates), RMSpropState(layout.unpack(second))

    return Optimizer(init, update)


def _moments(layout: Layout, state, g: np.ndarray, beta1: float, beta2: float):
    """m_t = beta1 m_{t-1} + (1 - beta1) g_t;  v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    (as linear interpolations, like torch's ``lerp_``), in the state's own buffers."""
    scratch = np.empty_like(g)
    first = _lerp_(layout.pack(state.first_moment), g, 1 - beta1, scratch)
    np.multiply(g, g, out=scratch)
    second = _lerp_(layout.pack(state.second_moment), scratch, 1 - beta2, scratch)
    return first, second


def _check_adam(learning_rate, beta1, beta2, epsilon, weight_decay) -> tuple[float, ...]:
    return (
        _check("learning_rate", learning_rate, 0, closed_low=False),
        _check("beta1", beta1, 0, 1),
        _check("beta2", beta2, 0, 1),
        _check("epsilon", epsilon, 0, closed_low=False),
        _check("weight_decay", weight_decay, 0),
    )


def adam(
    learning_rate: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Adam (Kingma & Ba 2015, Algorithm 1), as ``torch.optim.Adam`` (coupled weight decay).

    m_t, v_t as in the paper;  update = -(lr / (1 - beta1^t)) m_t / (sqrt(v_t) / sqrt(1 - beta2^t)
    + eps), i.e. -lr m-hat / (sqrt(v-hat) + eps), in torch's arrangement of the bias corrections.
    """
    learning_rate, beta1, beta2, epsilon, weight_decay = _check_adam(
        learning_rate, beta1, beta2, epsilon, weight_decay
    )

    def init(params):
        layout = layout_of(params)
        return AdamState(0, layout.zeros(), layout.zeros())

    def update(grads, state, params=None, *, loss=None):
        layout, g = _gradient(grads, params, weight_decay)
        count = state.count + 1
        first, second = _moments(layout, state, g, beta1, beta2)
        step_size = learning_rate / (1 - beta1**count)
        sqrt_correction2 = math.sqrt(1 - beta2**count)
        # -step_size m / (sqrt(v) / sqrt_correction2 + eps)
        updates = _adam_step(
            first, second, step_size * sqrt_correction2, 1.0, epsilon * sqrt_correction2
        )
        return layout.unpack(updates), AdamState(count, layout.unpack(first), layout.unpack(second))

    return Optimizer(init, update)


def nadam(
    learning_rate: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam", Algorithm 2) with a
    constant momentum schedule mu_t = beta1, the form ``optax.nadam`` implements:

    m-hat_t = beta1 m_t / (1 - beta1^(t+1)) + (1 - beta1) g_t / (1 - beta1^t),
    v-hat_t = v_t / (1 - beta2^t),  update = -lr m-hat_t / (sqrt(v-hat_t) + eps).

    (torch.optim.NAdam uses the decaying schedule mu_t = beta1 (1 - 0.96^(t psi) / 2); it equals
    this rule only as momentum_decay psi -> infinity.)
    """
    learning_rate, beta1, beta2, epsilon, weight_decay = _check_adam(
        learning_rate, beta1, beta2, epsilon, weight_decay
    )

    def init(params):
        layout = layout_of(params)
        return AdamState(0, layout.zeros(), layout.zeros())

    def update(grads, state, params=None, *, loss=None):
        layout, g = _gradient(grads, params, weight_decay)
        count = state.count + 1
        first, second = _moments(layout, state, g, beta1, beta2)
        m_hat = np.multiply(first, beta1 / (1 - beta1 ** (count + 1)))
        m_hat += g * ((1 - beta1) / (1 - beta1**count))
        sqrt_correction2 = math.sqrt(1 - beta2**count)
        # -lr m_hat / (sqrt(v / correction2) + eps)
        updates = _adam_step(
            m_hat, second, learning_rate * sqrt_correction2, 1.0, epsilon * sqrt_correction2
        )
        return layout.unpack(updates), AdamState(count, layout.unpack(first), layout.unpack(second))

    return Optimizer(init, update)


def eve(
    learning_rate: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    beta3: float = 0.999,
    k: float = 0.1,
    K: float = 10.0,  # noqa: N803 - the paper's name
    epsilon: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Eve (Koushik & Hayashi 2016, "Improving Stochastic Gradient Descent with Feedback",
    arXiv:1611.01505v1, Algorithm 1): Adam whose step is divided by a feedback term d_t that
    tracks the relative change of the (smoothed) minibatch loss f. Needs ``loss=f`` with f > 0.

    t = 1:  f-hat_0 = f_1, d_1 = 1.   t > 1, with f-hat = f-hat_{t-2}:
      (delta, Delta) = (k + 1, K + 1) if f_t >= f-hat else (1 / (K + 1), 1 / (k + 1))
      c_t = min(max(delta, f_t / f-hat), Delta);  f-hat_{t-1} = c_t f-hat
      r_t = |f-hat_{t-1} - f-hat| / min(f-hat_{t-1}, f-hat)
      d_t = beta3 d_{t-1} + (1 - beta3) r_t
    update = -lr m-hat_t / (d_t sqrt(v-hat_t) + eps)   (m-hat, v-hat as in Adam; the paper's
    placement of eps, not the authors' Keras code's ``lr_t`` form). With ``weight_decay`` the
    feedback still sees the loss the caller passes (the data loss), not the L2 term.
    """
    learning_rate, beta1, beta2, epsilon, weight_decay = _check_adam(
        learning_rate, beta1, beta2, epsilon, weight_decay
    )
    beta3 = _check("beta3", beta3, 0, 1)
    k = _check("k", k, 0, closed_low=False)
    K = _check("K", K, k, closed_low=False)  # noqa: N806 - the paper's name

    def init(params):
        layout = layout_of(params)
        return EveState(0, layout.zeros(), layout.zeros(), 1.0, 0.0)

    def feedback(state: EveState, f: float) -> tuple[float, float]:
        """(d_t, f-hat_{t-1}) from the previous state and the current loss f_t."""
        if state.count == 0:
            return 1.0, f
        previous = state.smoothed_loss
        low, high = (k + 1, K + 1) if f >= previous else (1 / (K + 1), 1 / (k + 1))
        smoothed = min(max(low, f / previous), high) * previous
        relative_change = abs(smoothed - previous) / min(smoothed, previous)
        return beta3 * state.feedback + (1 - beta3) * relative_change, smoothed

    def update(grads, state, params=None, *, loss=None):
        if loss is None:
            raise LossError(
                "eve needs the minibatch loss: opt.update(grads, state, params, loss=f)"
            )
        f = float(loss)
        if not (math.isfinite(f) and f > 0):
            raise LossError(f"eve needs a finite, positive loss, got {loss!r}")
        layout, g = _gradient(grads, params, weight_decay)
        count = state.count + 1
        first, second = _moments(layout, state, g, beta1, beta2)
        d, smoothed = feedback(state, f)
        correction1, sqrt_correction2 = 1 - beta1**count, math.sqrt(1 - beta2**count)
        # -lr (m / correction1) / (d sqrt(v / correction2) + eps)
        updates = _adam_step(
            first,
            second,
            learning_rate * sqrt_correction2 / correction1,
            d,
            epsilon * sqrt_correction2,
        )
        new_state = EveState(count, layout.unpack(first), layout.unpack(second), d, smoothed)
        return layout.unpack(updates), new_state

    return Optimizer(init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nag": nag,
    "rmsprop": rmsprop,
    "adam": adam,
    "nadam": nadam,
    "eve": eve,
}


def hyperparameters(name: str) -> list[str]:
    """The keyword arguments the optimizer called ``name`` takes."""
    return list(inspect.signature(lookup(OPTIMIZERS, name, "optimizer")).parameters)


def get(name: str, **hparams: float) -> Optimizer:
    """The optimizer ``name`` built from ``hparams``; ``ValueError`` for an unknown name or a
    hyperparameter this optimizer does not take (see ``hyperparameters(name)``)."""
    factory = lookup(OPTIMIZERS, name, "optimizer")
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(accepted)}"
        )
    return factory(**hparams)
