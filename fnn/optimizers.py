"""Optimizers as ``Optimizer(init, update)`` pairs of pure functions over pytrees (as optax).

    state = opt.init(params)
    updates, state = opt.update(grads, state, params, loss=value)
    params = fnn.apply_updates(params, updates)

Updates are already signed (``params + updates`` descends). ``weight_decay`` is coupled L2, as
in ``torch.optim``: ``g <- g + weight_decay * params`` before the rule, on every parameter.

Each rule below is written once, on plain flat arrays, and lifted to pytrees by ``lift``: the
grads, the params and every param-shaped field of the state become one flat array each (no copy
for the trees fnn makes), so each equation is one NumPy call over all parameters. ``update`` is
pure: it never writes its arguments, a state stays valid after it has been used, and the same
arguments always give bit-identical results. ``update(..., donate=True)`` is the explicit
opt-in to reuse the given state's (and grads') memory for the result, as JAX donates buffers.
Adding an optimizer is one factory below plus one line in ``OPTIMIZERS``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from fnn.constraints import NON_NEGATIVE, POSITIVE, UNIT, Constraint, ConstraintError
from fnn.registry import lookup
from fnn.tree import Layout, Params, flatten, layout_of


class Optimizer(NamedTuple):
    """``init(params) -> state`` and
    ``update(grads, state, params=None, *, loss=None, donate=False) -> (updates, state)``."""

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]


class LossError(ValueError):
    """An optimizer that needs the loss (Eve) got none, or one it cannot use."""


class SGDState(NamedTuple):
    """State of plain SGD: nothing but the params' layout, to check grads against."""

    layout: Layout


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


Factory = Callable[..., Optimizer]


def constrained(**table: Constraint) -> Callable[[Factory], Factory]:
    """Declare the valid values of an optimizer factory's hyperparameters, next to it (as
    scikit-learn's ``_parameter_constraints``). The factory then receives its arguments checked
    and as Python floats (which keep float32 state float32, NEP 50), and a bad one raises
    ``ConstraintError`` (a ``ValueError``) naming it. ``fnn train``'s options and help, its config
    check and the sweep check read the same table through ``constraints(name)``."""

    def declare(factory: Factory) -> Factory:
        signature = inspect.signature(factory)
        if set(signature.parameters) != set(table):
            raise TypeError(f"{factory.__name__}: constraints for {sorted(signature.parameters)}")

        @functools.wraps(factory)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = {name: table[name].check(name, v) for name, v in bound.arguments.items()}
            return factory(**values)

        checked.constraints = dict(table)
        return checked

    return declare


# A rule is ``rule(g, state, new, loss) -> (updates, state)`` on flat arrays: ``g`` is the
# gradient (weight decay included), ``state`` the optimizer's state with each param-shaped field
# as a flat array, and ``new(field=None)`` gives the array to write a result into: a fresh one,
# or with ``donate=True`` the old array of that state field (so a rule reads an input before it
# writes the output that may share its memory). Inputs are never written.
Rule = Callable[[np.ndarray, Any, Callable[..., np.ndarray], Any], tuple[np.ndarray, Any]]


def lift(
    state_type: type, moments: tuple[str, ...], init_state: Callable[[Layout], Any], rule: Rule,
    weight_decay: float,
) -> Optimizer:  # fmt: skip
    """The pytree ``Optimizer`` of ``rule``: ``init_state(layout)`` makes the state (its fields
    named in ``moments`` are param-shaped trees); ``update`` checks that grads (and, with weight
    decay, params) have the state's structure and shapes, naming the first difference, then
    runs ``rule``."""

    def init(params):
        return init_state(layout_of(params, "params"))

    def update(grads, state, params=None, *, loss=None, donate=False):
        if not isinstance(state, state_type):
            raise ValueError(
                f"state must be the {state_type.__name__} that this optimizer's init returned, "
                f"got {type(state).__name__}"
            )
        old = {}
        if moments:
            old[moments[0]], layout = flatten(getattr(state, moments[0]), f"state.{moments[0]}")
        else:
            layout = state.layout
            if not isinstance(layout, Layout):
                raise ValueError(f"state.layout must be a Layout, got {type(layout).__name__}")
        g = layout.flat(grads, "grads", "the optimizer state")
        if weight_decay:  # the params matter only here: checked only here
            if params is None:
                raise ValueError("weight_decay needs the params: call update(grads, state, params)")
            decayed = np.multiply(layout.flat(params, "params", "the optimizer state"),
                                  weight_decay, out=layout.empty())  # fmt: skip
            decayed += g
            g = decayed
        for name in moments[1:]:
            old[name] = layout.flat(getattr(state, name), f"state.{name}", f"state.{moments[0]}")

        def new(name: str | None = None) -> np.ndarray:
            return old[name] if donate and name is not None else layout.empty()

        updates, new_state = rule(g, state._replace(**old), new, loss)
        trees = {name: layout.unpack(getattr(new_state, name)) for name in moments}
        return layout.unpack(updates), new_state._replace(**trees)

    return Optimizer(init, update)


def _adam_direction(
    first: np.ndarray, second: np.ndarray, step: float, epsilon: float, out: np.ndarray
) -> np.ndarray:
    """out = -step * first / (sqrt(second) + epsilon), in four passes."""
    np.sqrt(second, out=out)
    out += epsilon
    np.divide(first, out, out=out)
    out *= -step
    return out


def _moments(g, state, new, beta1: float, beta2: float) -> tuple[np.ndarray, ...]:
    """m_t = beta1 m_{t-1} + (1 - beta1) g_t;  v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    (Kingma & Ba 2015, Algorithm 1), and a fresh scratch array."""
    scratch = new()
    first, second = new("first_moment"), new("second_moment")
    np.multiply(g, 1 - beta1, out=scratch)
    np.multiply(state.first_moment, beta1, out=first)
    first += scratch
    np.multiply(g, g, out=scratch)
    scratch *= 1 - beta2
    np.multiply(state.second_moment, beta2, out=second)
    second += scratch
    return first, second, scratch


@constrained(learning_rate=POSITIVE, weight_decay=NON_NEGATIVE)
def sgd(learning_rate: float, weight_decay: float = 0.0) -> Optimizer:
    """Plain gradient descent, as ``torch.optim.SGD(lr, momentum=0)``: update = -lr g."""

    def rule(g, state, new, loss):
        return np.multiply(g, -learning_rate, out=new()), state

    return lift(SGDState, (), SGDState, rule, weight_decay)


def _zeros(state_type: type, *moments: str, **scalars) -> Callable[[Layout], Any]:
    """An ``init_state``: ``state_type`` with zero trees for ``moments`` and the ``scalars``."""
    return lambda layout: state_type(**scalars, **{name: layout.zeros() for name in moments})


@constrained(learning_rate=POSITIVE, momentum=UNIT, weight_decay=NON_NEGATIVE)
def momentum(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """Classical (Polyak 1964) momentum, as ``torch.optim.SGD(lr, momentum=mu)``, undamped.

    b_t = mu b_{t-1} + g_t  (b_0 = 0, so b_1 = g_1 as in torch);  update = -lr b_t.
    """

    def rule(g, state, new, loss):
        velocity = np.multiply(state.velocity, momentum, out=new("velocity"))
        velocity += g
        return np.multiply(velocity, -learning_rate, out=new()), MomentumState(velocity)

    return lift(MomentumState, ("velocity",), _zeros(MomentumState, "velocity"), rule, weight_decay)


@constrained(learning_rate=POSITIVE, momentum=UNIT, weight_decay=NON_NEGATIVE)
def nag(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """Nesterov momentum in PyTorch's form, ``torch.optim.SGD(lr, momentum=mu, nesterov=True)``
    (Sutskever et al. 2013, rewritten so the parameters are the look-ahead point).

    b_t = mu b_{t-1} + g_t;  update = -lr (g_t + mu b_t).
    """

    def rule(g, state, new, loss):
        velocity = np.multiply(state.velocity, momentum, out=new("velocity"))
        velocity += g
        step = np.multiply(velocity, momentum, out=new())
        step += g
        step *= -learning_rate
        return step, MomentumState(velocity)

    return lift(MomentumState, ("velocity",), _zeros(MomentumState, "velocity"), rule, weight_decay)


@constrained(learning_rate=POSITIVE, beta=UNIT, epsilon=POSITIVE, weight_decay=NON_NEGATIVE)
def rmsprop(
    learning_rate: float, beta: float = 0.9, epsilon: float = 1e-8, weight_decay: float = 0.0
) -> Optimizer:
    """RMSprop (Hinton, Coursera lecture 6e, 2012), as ``torch.optim.RMSprop(lr, alpha=beta,
    eps=epsilon)``: v_t = beta v_{t-1} + (1 - beta) g_t^2;  update = -lr g_t / (sqrt(v_t) + eps),
    epsilon outside the square root, no bias correction. (The default beta = 0.9 is Hinton's;
    torch's alpha defaults to 0.99.)
    """

    def rule(g, state, new, loss):
        scratch = np.multiply(g, g, out=new())
        scratch *= 1 - beta
        second = np.multiply(state.second_moment, beta, out=new("second_moment"))
        second += scratch
        return _adam_direction(g, second, learning_rate, epsilon, scratch), RMSpropState(second)

    init_state = _zeros(RMSpropState, "second_moment")
    return lift(RMSpropState, ("second_moment",), init_state, rule, weight_decay)


# Adam's family: (learning rate, beta1, beta2, epsilon, weight decay)
ADAM = MappingProxyType(dict(learning_rate=POSITIVE, beta1=UNIT, beta2=UNIT, epsilon=POSITIVE,
                            weight_decay=NON_NEGATIVE))  # fmt: skip


ADAM_MOMENTS = ("first_moment", "second_moment")


@constrained(**ADAM)
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

    def rule(g, state, new, loss):
        count = state.count + 1
        first, second, scratch = _moments(g, state, new, beta1, beta2)
        sqrt_correction2 = math.sqrt(1 - beta2**count)
        step = learning_rate / (1 - beta1**count) * sqrt_correction2
        updates = _adam_direction(first, second, step, epsilon * sqrt_correction2, scratch)
        return updates, AdamState(count, first, second)

    return lift(AdamState, ADAM_MOMENTS, _zeros(AdamState, *ADAM_MOMENTS, count=0), rule,
                 weight_decay)  # fmt: skip


@constrained(**ADAM)
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

    def rule(g, state, new, loss):
        count = state.count + 1
        first, second, scratch = _moments(g, state, new, beta1, beta2)
        m_hat = np.multiply(g, (1 - beta1) / (1 - beta1**count), out=new())
        np.multiply(first, beta1 / (1 - beta1 ** (count + 1)), out=scratch)
        m_hat += scratch
        sqrt_correction2 = math.sqrt(1 - beta2**count)
        # -lr m_hat / (sqrt(v / correction2) + eps)
        updates = _adam_direction(
            m_hat, second, learning_rate * sqrt_correction2, epsilon * sqrt_correction2, scratch
        )
        return updates, AdamState(count, first, second)

    return lift(AdamState, ADAM_MOMENTS, _zeros(AdamState, *ADAM_MOMENTS, count=0), rule,
                 weight_decay)  # fmt: skip


@constrained(**ADAM, beta3=UNIT, k=POSITIVE, K=POSITIVE)
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
    if not K > k:
        raise ConstraintError("K", f"must be > k = {k:g}; got {K!r}")

    def feedback(state: EveState, f: float) -> tuple[float, float]:
        """(d_t, f-hat_{t-1}) from the previous state and the current loss f_t."""
        if state.count == 0:
            return 1.0, f
        previous = state.smoothed_loss
        low, high = (k + 1, K + 1) if f >= previous else (1 / (K + 1), 1 / (k + 1))
        smoothed = min(max(low, f / previous), high) * previous
        relative_change = abs(smoothed - previous) / min(smoothed, previous)
        return beta3 * state.feedback + (1 - beta3) * relative_change, smoothed

    def rule(g, state, new, loss):
        if loss is None:
            raise LossError(
                "eve needs the minibatch loss: opt.update(grads, state, params, loss=f)"
            )
        f = float(loss)
        if not (math.isfinite(f) and f > 0):
            raise LossError(f"eve needs a finite, positive loss, got {loss!r}")
        count = state.count + 1
        d, smoothed = feedback(state, f)
        first, second, scratch = _moments(g, state, new, beta1, beta2)
        correction1, sqrt_correction2 = 1 - beta1**count, math.sqrt(1 - beta2**count)
        # -lr (m / correction1) / (d sqrt(v / correction2) + eps)
        #   = -(lr sqrt_correction2 / (correction1 d)) m / (sqrt(v) + eps sqrt_correction2 / d)
        step = learning_rate * sqrt_correction2 / correction1 / d
        updates = _adam_direction(first, second, step, epsilon * sqrt_correction2 / d, scratch)
        return updates, EveState(count, first, second, d, smoothed)

    init_state = _zeros(EveState, *ADAM_MOMENTS, count=0, feedback=1.0, smoothed_loss=0.0)
    return lift(EveState, ADAM_MOMENTS, init_state, rule, weight_decay)


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
    return list(constraints(name))


def constraints(name: str) -> dict[str, Constraint]:
    """The valid values of each hyperparameter of the optimizer ``name``, as its factory
    declares them (``@constrained``); its defaults are ``defaults(name)``."""
    factory = lookup(OPTIMIZERS, name, "optimizer")
    table = getattr(factory, "constraints", None)
    if table is None:
        raise TypeError(f"optimizer {name}: its factory must declare @constrained(...) ranges")
    return dict(table)


def defaults(name: str) -> dict[str, float]:
    """The default of each hyperparameter of ``name`` that has one (learning_rate has none)."""
    parameters = inspect.signature(lookup(OPTIMIZERS, name, "optimizer")).parameters
    return {k: p.default for k, p in parameters.items() if p.default is not inspect.Parameter.empty}


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
