"""Optimizers as ``Optimizer(init, update)`` pairs of pure functions over pytrees (as optax).

    state = opt.init(params)
    updates, state = opt.update(grads, state, params, loss=value)
    params = fnn.apply_updates(params, updates)

Updates are already signed (``params + updates`` descends). ``weight_decay`` is coupled L2, as
in ``torch.optim``: ``g <- g + weight_decay * params`` before the rule, on every parameter.

Each rule is written once, as its paper's equations on one parameter's numbers
(``fnn.rules.adam_elements``: one line per equation), and ``lift`` turns it into an optimizer
over pytrees: it ravels the grads (``fnn.tree.ravel``), runs the rule over the flat arrays and
unravels the updates. The rule runs on one of two paths, which give the same bits: numba's
compiled loop over every index (``adam_loop``, ``fnn.fused``), when numba is installed, or
NumPy's passes over whole arrays recorded from the same equations (``fnn.passes``). A state
holds its moments as flat arrays beside the params' ``Layout``, which ``update`` compares with
the grads' layout. Every result is a new array: ``update`` never writes its arguments, and the
same arguments always give bit-identical results. Adding an optimizer is its equations and loop
in ``fnn.rules``, one factory below and one line in ``OPTIMIZERS``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from fnn import fused, passes
from fnn.constraints import NON_NEGATIVE, POSITIVE, UNIT, Constraint, ConstraintError
from fnn.registry import lookup
from fnn.rules import (
    adam_elements,
    adam_loop,
    coupled_decay,
    momentum_elements,
    momentum_loop,
    nadam_elements,
    nadam_loop,
    nag_elements,
    nag_loop,
    rmsprop_elements,
    rmsprop_loop,
    sgd_elements,
    sgd_loop,
)
from fnn.tree import Layout, Params, apply_updates, difference, ravel


class Optimizer(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params=None, *, loss=None) ->
    (updates, state)``, as optax's pair, and ``step``: ``update`` and ``fnn.apply_updates`` in
    one call. ``apply(grads, state, params, *, loss=None) -> (params, state)`` is that call
    made by the optimizer itself, in one pass where it can (``lift``'s optimizers, and a
    ``chain`` ending in one); ``Optimizer(init, update)`` needs none."""

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]
    apply: Callable[..., tuple[Params, Any]] | None = None

    def step(self, grads: Params, state: Any, params: Params, *, loss: Any = None):
        """``(new params, new state)``: the bits of ``update`` followed by ``apply_updates``.
        A compiled loop (``fnn.fused``) adds each update to its parameter in the pass that
        computes it, so the update is never stored: the fastest step fnn has."""
        if self.apply is not None:
            return self.apply(grads, state, params, loss=loss)
        updates, state = self.update(grads, state, params, loss=loss)
        return apply_updates(params, updates), state


class LossError(ValueError):
    """An optimizer that needs the loss (Eve) got none, or one it cannot use."""


# Each state holds its param-shaped moments as flat arrays (see ``Layout.unravel`` for trees)
# and ``layout``, the params' layout that grads must have.


class SGDState(NamedTuple):
    layout: Layout


class MomentumState(NamedTuple):
    velocity: np.ndarray
    layout: Layout


class RMSpropState(NamedTuple):
    second_moment: np.ndarray
    layout: Layout


class AdamState(NamedTuple):
    count: int
    first_moment: np.ndarray
    second_moment: np.ndarray
    layout: Layout


class EveState(NamedTuple):
    count: int
    first_moment: np.ndarray
    second_moment: np.ndarray
    feedback: float  # d_t
    smoothed_loss: float  # f-hat_{t-1}
    layout: Layout


def _no_equality(self, other: object) -> bool:
    raise TypeError(
        f"a {type(self).__name__} holds arrays, so == has no single answer: compare states "
        "with fnn.tree_allclose(a, b) (rtol=0 for exact equality)"
    )


for _state in (SGDState, MomentumState, RMSpropState, AdamState, EveState):
    _state.__eq__ = _state.__ne__ = _no_equality  # as NumPy would, but saying what to use

Factory = Callable[..., Optimizer]


def _number(owner: str, name: str, value: Any, constraint: Constraint | None) -> Any:
    """``value`` checked by ``constraint`` (when given), after refusing a string with a
    ``TypeError``: the library takes numbers (the command line and configs convert text)."""
    if isinstance(value, str | bytes):
        raise TypeError(f"{owner}: {name} must be a number, got the string {value!r}")
    return value if constraint is None else constraint.check(name, value)


def constrained(**table: Constraint) -> Callable[[Factory], Factory]:
    """Declare the valid values of an optimizer factory's hyperparameters, next to it (as
    scikit-learn's ``_parameter_constraints``). The factory then receives its arguments checked
    and as Python floats (which keep float32 state float32, NEP 50), and a bad one raises
    ``ConstraintError`` (a ``ValueError``) naming it. A ``learning_rate`` that is a function of
    the step count (0 for the first update, as optax's schedules) gives
    ``chain(factory(1.0, ...), scale_by_schedule(learning_rate))``. ``fnn train``'s options and
    help, its config check and the sweep check read the same table through ``constraints(name)``.
    """

    def declare(factory: Factory) -> Factory:
        signature = inspect.signature(factory)
        if set(signature.parameters) != set(table):
            raise TypeError(f"{factory.__name__}: constraints for {sorted(signature.parameters)}")

        @functools.wraps(factory)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            schedule = bound.arguments.get("learning_rate")
            if callable(schedule):  # every update is proportional to the learning rate
                bound.arguments["learning_rate"] = 1.0
            values = {name: _number(factory.__name__, name, v, table[name])
                      for name, v in bound.arguments.items()}  # fmt: skip
            if callable(schedule):
                return chain(factory(**values), scale_by_schedule(schedule))
            return factory(**values)

        checked.constraints = dict(table)
        return checked

    return declare


class Rule(NamedTuple):
    """An update rule, stated once, as equations on numbers that two paths execute.

    ``elements(g, *moments, *coefficients) -> (update, *new moments)`` is the rule for one
    parameter's numbers, written with +, -, *, / and ``np.sqrt``. NumPy runs it on whole flat
    arrays, as passes recorded from it (``fnn.passes``). ``loop(g, params, decay, apply,
    *moments, coefficients, out, *new moments)`` calls ``elements`` at every index (weight
    decay included) and writes into ``out`` the update, or with ``apply`` params + update
    (``fnn.rules.applied``): numba compiles it into one pass (``fnn.fused``; mark
    ``elements`` and what it calls ``@compilable``, in the loop's file), and ``None`` keeps
    the rule on NumPy. The moments come in the order of the state's fields, in and out.
    ``coefficients`` are the step's numbers (every number the equations use: they hold no
    constant) in the order ``elements`` takes them: a tuple, or ``coefficients(state, loss)
    -> (numbers, changes)`` when they change from step to step, ``changes`` being the state's
    new scalar fields (a count, Eve's feedback)."""

    elements: Callable[..., tuple]
    loop: Callable[..., None] | None
    coefficients: tuple | Callable[[Any, Any], tuple[tuple, dict]]


def lift(state_type: type, rule: Rule, weight_decay: float, **scalars: float) -> Optimizer:
    """The pytree ``Optimizer`` of ``rule``. ``init`` gives ``state_type`` with the initial
    ``scalars``, the params' layout, and zeros for every other field (the flat moments);
    ``update`` checks that grads (and, with weight decay, params) are laid out as the state
    says, naming the first difference, then runs the rule on the flat grads: fused into one
    compiled loop when numba is there (``fnn.fused``, decided here), else through NumPy.
    ``apply`` (``Optimizer.step``) gives ``params + update`` from the same run, which the
    compiled loop writes in its one pass instead of the update."""
    moments = [name for name in state_type._fields if name not in scalars and name != "layout"]
    loop = rule.loop if fused.unavailable() is None else None
    if loop is not None and not fused.is_compilable(rule.elements):
        raise TypeError(f"{rule.elements.__name__} runs in a compiled loop: mark it @compilable")
    kernel: Any = False  # ``loop`` compiled (None: numba cannot be imported), at the first update

    def init(params):
        layout = ravel(params)[1]
        zeros = {name: np.zeros(layout.size, layout.dtype) for name in moments}
        return state_type(**scalars, **zeros, layout=layout)

    def run(grads, state, params, loss, apply):
        """``(updates or, with ``apply``, the new params; the new state)`` as trees."""
        nonlocal kernel
        if not isinstance(state, state_type):
            raise ValueError(f"state must be the {state_type.__name__} that this optimizer's "
                             f"init returned, got {type(state).__name__}")  # fmt: skip
        g, layout = ravel(grads)
        if layout is not state.layout:  # not the very layout object: compare in full
            g = _checked(g, layout, state, grads, "grads")
        if g.dtype.kind != "f":
            raise ValueError(f"optimizers update floating-point parameters, got {g.dtype}")
        old = []  # the moments, each a flat array like g
        for name in moments:
            old.append(value := getattr(state, name))
            if type(value) is not np.ndarray or (value.shape, value.dtype) != (g.shape, g.dtype):
                raise ValueError(f"state.{name} must be a flat array of {g.size} {g.dtype} values "
                                 f"(see state.layout), got {_kind(value)}")  # fmt: skip
        decay, flat_params = g.dtype.type(weight_decay), None
        if decay or apply:  # the params matter only here: checked only here
            if params is None:
                raise ValueError(
                    "step needs the params it steps from"
                    if apply
                    else "weight_decay needs the params: call update(grads, state, params)"
                )
            flat_params, layout = ravel(params)
            if apply and (layout != state.layout or len(set(layout.dtypes)) > 1):
                # unlike the state, or leaves of several dtypes, each added in its own by
                # apply_updates (not in the flat dtype): the update, then apply_updates
                updates, new_state = run(grads, state, params, loss, apply=False)
                return apply_updates(params, updates), new_state
            if layout is not state.layout:
                flat_params = _checked(flat_params, layout, state, params, "params")
        numbers, changes = (rule.coefficients(state, loss) if callable(rule.coefficients)
                            else (rule.coefficients, {}))  # fmt: skip
        numbers = tuple(map(g.dtype.type, numbers))  # in the arrays' dtype, as NumPy casts them
        results = None  # [updates or new params, *new moments], new arrays: the loop fills them
        if loop is not None and g.dtype in fused.FUSED_DTYPES:
            if kernel is False:
                kernel = fused.compiled(loop)
            if kernel is not None:
                results = list(map(np.empty_like, [g] * (1 + len(old))))
                kernel(g, g if flat_params is None else flat_params, decay, apply, *old, numbers,
                       *results)  # fmt: skip
        if results is None:  # NumPy's passes
            if decay:
                (g,) = passes.record(coupled_decay, 2, 1).run(g, flat_params, decay)
            recorded = passes.record(rule.elements, 1 + len(old), len(numbers))
            results = list(recorded.run(g, *old, *numbers))  # new arrays, none an input
            if apply:  # into the update's own array, as apply_updates adds
                results[0] = np.add(flat_params, results[0], out=results[0])
        new_state = state._replace(**dict(zip(moments, results[1:], strict=True)), **changes)
        return state.layout.unravel(results[0]), new_state

    def update(grads, state, params=None, *, loss=None):
        return run(grads, state, params, loss, apply=False)

    def apply(grads, state, params, *, loss=None):
        return run(grads, state, params, loss, apply=True)

    return Optimizer(init, update, apply)


def _kind(value: Any) -> str:
    """What a state field holds, for a message: ``a (3,) float64 array`` or ``a list``."""
    if isinstance(value, np.ndarray):
        return f"a {value.shape} {value.dtype} array"
    return f"a {type(value).__name__}"


def _checked(flat: np.ndarray, layout: Layout, state: Any, tree: Params, name: str) -> np.ndarray:
    """``flat`` (``tree`` raveled, with ``layout``) in the state's dtype, or ``ValueError``
    naming the first place where ``tree`` differs from the layout in ``state``."""
    expected = state.layout
    if not isinstance(expected, Layout):
        raise ValueError(f"state.layout must be a Layout, got {type(expected).__name__}")
    if layout[:2] != expected[:2]:  # the structure or a shape differs (a dtype may)
        template = expected.unravel(np.zeros(expected.size, expected.dtype))
        problem = difference(template, tree, shapes=True) or "in its leaves"
        raise ValueError(f"{name} differ from the optimizer state {problem}")
    return flat.astype(expected.dtype, copy=False)


@constrained(learning_rate=POSITIVE, weight_decay=NON_NEGATIVE)
def sgd(learning_rate: float, weight_decay: float = 0.0) -> Optimizer:
    """Plain gradient descent, as ``torch.optim.SGD(lr, momentum=0)``: update = -lr g."""

    return lift(SGDState, Rule(sgd_elements, sgd_loop, (-learning_rate,)), weight_decay)


@constrained(learning_rate=POSITIVE, momentum=UNIT, weight_decay=NON_NEGATIVE)
def momentum(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """Classical (Polyak 1964) momentum, as ``torch.optim.SGD(lr, momentum=mu)``, undamped.

    b_t = mu b_{t-1} + g_t  (b_0 = 0, so b_1 = g_1 as in torch);  update = -lr b_t.
    """
    rule = Rule(momentum_elements, momentum_loop, (momentum, -learning_rate))
    return lift(MomentumState, rule, weight_decay)


@constrained(learning_rate=POSITIVE, momentum=UNIT, weight_decay=NON_NEGATIVE)
def nag(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """Nesterov momentum in PyTorch's form, ``torch.optim.SGD(lr, momentum=mu, nesterov=True)``
    (Sutskever et al. 2013, rewritten so the parameters are the look-ahead point).

    b_t = mu b_{t-1} + g_t;  update = -lr (g_t + mu b_t).
    """
    return lift(MomentumState, Rule(nag_elements, nag_loop, (momentum, -learning_rate)),
                weight_decay)  # fmt: skip


@constrained(learning_rate=POSITIVE, beta=UNIT, epsilon=POSITIVE, weight_decay=NON_NEGATIVE)
def rmsprop(
    learning_rate: float, beta: float = 0.9, epsilon: float = 1e-8, weight_decay: float = 0.0
) -> Optimizer:
    """RMSprop (Hinton, Coursera lecture 6e, 2012), as ``torch.optim.RMSprop(lr, alpha=beta,
    eps=epsilon)``: v_t = beta v_{t-1} + (1 - beta) g_t^2;  update = -lr g_t / (sqrt(v_t) + eps),
    epsilon outside the square root, no bias correction. (The default beta = 0.9 is Hinton's;
    torch's alpha defaults to 0.99.)
    """
    rule = Rule(rmsprop_elements, rmsprop_loop, (1 - beta, -learning_rate, epsilon))
    return lift(RMSpropState, rule, weight_decay)


# Adam's family: (learning rate, beta1, beta2, epsilon, weight decay)
ADAM = MappingProxyType(dict(learning_rate=POSITIVE, beta1=UNIT, beta2=UNIT, epsilon=POSITIVE,
                            weight_decay=NON_NEGATIVE))  # fmt: skip


def adam_rule(
    learning_rate: float, beta1: float, beta2: float, epsilon: float, *, nesterov: bool = False,
    feedback: Callable[[Any, Any], dict[str, float]] | None = None,
) -> Rule:  # fmt: skip
    """The rule of Adam (Kingma & Ba 2015, Algorithm 1), of NAdam with ``nesterov`` (Dozat
    2016, the form of ``optax.nadam``), and of Eve with a ``feedback(state, loss)`` giving the
    state's new ``feedback`` d_t and ``smoothed_loss`` (Koushik & Hayashi 2016), which divides
    the step by d_t (1 without it):

        m_t = beta1 m_{t-1} + (1 - beta1) g_t
        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        m-hat_t = m_t / (1 - beta1^t)    or, with nesterov,
        m-hat_t = beta1 m_t / (1 - beta1^(t+1)) + (1 - beta1) g_t / (1 - beta1^t)
        update = -lr m-hat_t / (d_t sqrt(v_t / (1 - beta2^t)) + eps)

    with the bias corrections folded into two scalars as in ``torch.optim.Adam``:
    update = -(lr sqrt(c2) / d_t) m-hat_t / (sqrt(v_t) + eps sqrt(c2) / d_t), c2 = 1 - beta2^t.
    """

    def coefficients(state, loss):
        t, changes = state.count + 1, {} if feedback is None else feedback(state, loss)
        d = changes.get("feedback", 1.0)
        sqrt_c2 = math.sqrt(1 - beta2**t)
        epsilon_t = epsilon * sqrt_c2 / d
        if nesterov:  # m-hat_t = c1 m_t + c2 g_t
            c1, c2 = beta1 / (1 - beta1 ** (t + 1)), (1 - beta1) / (1 - beta1**t)
            numbers = (1 - beta1, 1 - beta2, c1, c2, -learning_rate * sqrt_c2 / d, epsilon_t)
        else:  # m-hat_t = m_t / (1 - beta1^t): the division goes into the step
            step = learning_rate * sqrt_c2 / ((1 - beta1**t) * d)
            numbers = (1 - beta1, 1 - beta2, -step, epsilon_t)
        return numbers, {"count": t, **changes}

    if nesterov:
        return Rule(nadam_elements, nadam_loop, coefficients)
    return Rule(adam_elements, adam_loop, coefficients)


@constrained(**ADAM)
def adam(
    learning_rate: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Adam (Kingma & Ba 2015, Algorithm 1), as ``torch.optim.Adam`` (coupled weight decay):
    update = -lr m-hat / (sqrt(v-hat) + eps); see ``adam_rule``."""
    return lift(AdamState, adam_rule(learning_rate, beta1, beta2, epsilon), weight_decay, count=0)


@constrained(**ADAM)
def nadam(
    learning_rate: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam", Algorithm 2) with a
    constant momentum schedule mu_t = beta1, the form ``optax.nadam`` implements: Adam with

    m-hat_t = beta1 m_t / (1 - beta1^(t+1)) + (1 - beta1) g_t / (1 - beta1^t).

    (torch.optim.NAdam uses the decaying schedule mu_t = beta1 (1 - 0.96^(t psi) / 2); it equals
    this rule only as momentum_decay psi -> infinity.)
    """
    rule = adam_rule(learning_rate, beta1, beta2, epsilon, nesterov=True)
    return lift(AdamState, rule, weight_decay, count=0)


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

    def feedback(state: EveState, loss: Any) -> dict[str, float]:
        """d_t and f-hat_{t-1} from the previous state and the current loss f_t."""
        if loss is None:
            raise LossError(
                "eve needs the minibatch loss: opt.update(grads, state, params, loss=f)"
            )
        f = float(loss)
        if not (math.isfinite(f) and f > 0):
            raise LossError(f"eve needs a finite, positive loss, got {loss!r}")
        if state.count == 0:
            return {"feedback": 1.0, "smoothed_loss": f}
        previous = state.smoothed_loss
        low, high = (k + 1, K + 1) if f >= previous else (1 / (K + 1), 1 / (k + 1))
        smoothed = min(max(low, f / previous), high) * previous
        relative_change = abs(smoothed - previous) / min(smoothed, previous)
        d = beta3 * state.feedback + (1 - beta3) * relative_change
        return {"feedback": d, "smoothed_loss": smoothed}

    rule = adam_rule(learning_rate, beta1, beta2, epsilon, feedback=feedback)
    return lift(EveState, rule, weight_decay, count=0, feedback=1.0, smoothed_loss=0.0)


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none (as ``optax.EmptyState``)."""


class ScheduleState(NamedTuple):
    count: int  # updates made so far
    layout: Layout


def chain(*transforms: Optimizer) -> Optimizer:
    """The transformations one after the other, as ``optax.chain``: each one's updates are the
    next one's grads, the state is the tuple of their states, and ``params`` and ``loss`` (for
    Eve) reach every one. ``chain(clip_by_global_norm(1.0), adam(1e-3))`` clips, then steps;
    its ``step`` is the last transformation's, given the others' updates."""

    def init(params):
        return tuple(transform.init(params) for transform in transforms)

    def run(grads, state, params, loss, apply):
        """The transformations' updates in turn, the last one's ``step`` with ``apply``."""
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(f"state must be the tuple of {len(transforms)} states that this "
                             "chain's init returned")  # fmt: skip
        states, last = [], len(transforms) - 1
        for index, (transform, inner) in enumerate(zip(transforms, state, strict=True)):
            transformation = transform.step if apply and index == last else transform.update
            grads, inner = transformation(grads, inner, params, loss=loss)
            states.append(inner)
        return grads, tuple(states)  # with apply, the new params

    def update(grads, state, params=None, *, loss=None):
        return run(grads, state, params, loss, apply=False)

    def apply(grads, state, params, *, loss=None):
        return run(grads, state, params, loss, apply=True)

    return Optimizer(init, update, apply if transforms else None)


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """Grads scaled to global norm ``max_norm`` when theirs is larger (Pascanu et al. 2013), as
    ``optax.clip_by_global_norm``: g <- g max_norm / ||g|| if ||g|| >= max_norm, else g, with
    ||g|| = sqrt(sum of every squared value). Its state is an ``EmptyState``."""
    max_norm = _number("clip_by_global_norm", "max_norm", max_norm, POSITIVE)

    def update(grads, state, params=None, *, loss=None):
        if not isinstance(state, EmptyState):
            raise ValueError("state must be the EmptyState that clip_by_global_norm's init gave")
        flat, layout = ravel(grads)
        norm = math.sqrt(float(np.vdot(flat, flat)))
        if norm < max_norm:
            return grads, state
        return layout.unravel(np.multiply(flat, max_norm / norm)), state

    return Optimizer(lambda params: EmptyState(), update)


def scale_by_schedule(schedule: Callable[[int], float]) -> Optimizer:
    """Updates times ``schedule(count)``, count = 0 for the first update, as
    ``optax.scale_by_schedule``. Its state is a ``ScheduleState``. The scaling is SGD's
    equation (``sgd_elements``, with the schedule's value where SGD has -lr), lifted as every
    rule is: so a chain that ends with it steps in one pass, params + schedule(count) updates."""
    if not callable(schedule):
        raise ValueError(f"schedule must be a function of the step count, got {schedule!r}")

    def coefficients(state, loss):
        return (float(schedule(state.count)),), {"count": state.count + 1}

    return lift(ScheduleState, Rule(sgd_elements, sgd_loop, coefficients), 0.0, count=0)


def cosine_decay_schedule(init_value: float, decay_steps: int) -> Callable[[int], float]:
    """``init_value (1 + cos(pi min(count, decay_steps) / decay_steps)) / 2`` (Loshchilov &
    Hutter, "SGDR", ICLR 2017, eq. 5 without restarts), as ``optax.cosine_decay_schedule``
    with alpha 0."""
    init_value = _number("cosine_decay_schedule", "init_value", init_value, POSITIVE)
    decay_steps = int(_number("cosine_decay_schedule", "decay_steps", decay_steps, None))
    if decay_steps < 1:
        raise ValueError(f"decay_steps must be a positive integer, got {decay_steps}")
    return lambda count: init_value * 0.5 * (1 + math.cos(math.pi * min(count, decay_steps)
                                                          / decay_steps))  # fmt: skip


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
