"""Each optimizer's rule as equations on one parameter's numbers (``adam_elements``: one line
per equation of the paper), beside the loop that numba compiles from them (``adam_loop``).

``fnn.optimizers`` lifts them to pytrees (``Rule``, ``lift``): NumPy replays the equations as
passes over whole flat arrays (``fnn.passes``), numba runs the loop, one pass over the flat
arrays that calls them at every index (``fnn.fused``). Every operation is written in the order
the passes run it, and every number is a coefficient in the arrays' dtype, so both paths round
alike. The loops and the equations they call live in this one file, which numba's cache checks
for changes.
"""

from __future__ import annotations

import numpy as np

from fnn.fused import compilable


@compilable
def coupled_decay(g, params, weight_decay):
    return (params * weight_decay + g,)  # g + weight_decay params: coupled L2, as torch.optim


@compilable
def decayed(g, params, weight_decay):
    """The gradient a rule sees: ``coupled_decay``'s with weight decay, else g itself."""
    return coupled_decay(g, params, weight_decay)[0] if weight_decay else g


@compilable
def applied(update, params, apply):
    """What a loop writes: the update, or with ``apply`` the new params, params + update, as
    ``fnn.apply_updates`` adds them."""
    return params + update if apply else update


@compilable
def lerp(start, end, weight):
    """start + weight (end - start) = (1 - weight) start + weight end: the exponential moving
    average of Adam's moments, as ``torch.lerp``."""
    return (end - start) * weight + start


@compilable
def sgd_elements(g, negative_lr):
    return (g * negative_lr,)  # update = -lr g


def sgd_loop(g, params, decay, apply, coefficients, out):
    for i in range(g.size):
        (update,) = sgd_elements(decayed(g[i], params[i], decay), *coefficients)
        out[i] = applied(update, params[i], apply)


@compilable
def momentum_elements(g, b, mu, negative_lr):
    b = b * mu + g  # b_t = mu b_{t-1} + g_t
    return b * negative_lr, b  # update = -lr b_t


def momentum_loop(g, params, decay, apply, b, coefficients, out, b_out):
    for i in range(g.size):
        update, b_out[i] = momentum_elements(decayed(g[i], params[i], decay), b[i], *coefficients)
        out[i] = applied(update, params[i], apply)


@compilable
def nag_elements(g, b, mu, negative_lr):
    b = b * mu + g  # b_t = mu b_{t-1} + g_t
    return (b * mu + g) * negative_lr, b  # update = -lr (g_t + mu b_t)


def nag_loop(g, params, decay, apply, b, coefficients, out, b_out):
    for i in range(g.size):
        update, b_out[i] = nag_elements(decayed(g[i], params[i], decay), b[i], *coefficients)
        out[i] = applied(update, params[i], apply)


@compilable
def rmsprop_elements(g, v, one_minus_beta, negative_lr, epsilon):
    v = lerp(v, g * g, one_minus_beta)  # v_t = beta v_{t-1} + (1 - beta) g_t^2
    return g / (np.sqrt(v) + epsilon) * negative_lr, v  # update = -lr g_t / (sqrt(v_t) + eps)


def rmsprop_loop(g, params, decay, apply, v, coefficients, out, v_out):
    for i in range(g.size):
        update, v_out[i] = rmsprop_elements(decayed(g[i], params[i], decay), v[i], *coefficients)
        out[i] = applied(update, params[i], apply)


@compilable
def adam_elements(g, m, v, one_minus_beta1, one_minus_beta2, negative_step, epsilon):
    m = lerp(m, g, one_minus_beta1)  # m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v = lerp(v, g * g, one_minus_beta2)  # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    return m / (np.sqrt(v) + epsilon) * negative_step, m, v  # the bias corrections folded


def adam_loop(g, params, decay, apply, m, v, coefficients, out, m_out, v_out):
    for i in range(g.size):
        update, m_out[i], v_out[i] = adam_elements(decayed(g[i], params[i], decay), m[i], v[i],
                                                   *coefficients)  # fmt: skip
        out[i] = applied(update, params[i], apply)


@compilable
def nadam_elements(g, m, v, one_minus_beta1, one_minus_beta2, c1, c2, negative_step, epsilon):
    m = lerp(m, g, one_minus_beta1)  # m_t
    v = lerp(v, g * g, one_minus_beta2)  # v_t
    return (m * c1 + g * c2) / (np.sqrt(v) + epsilon) * negative_step, m, v  # m-hat_t: c1, c2


def nadam_loop(g, params, decay, apply, m, v, coefficients, out, m_out, v_out):
    for i in range(g.size):
        update, m_out[i], v_out[i] = nadam_elements(decayed(g[i], params[i], decay), m[i], v[i],
                                                    *coefficients)  # fmt: skip
        out[i] = applied(update, params[i], apply)
