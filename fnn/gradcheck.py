"""Finite-difference check of the hand-written gradients in ``fnn.model.grads``."""

from __future__ import annotations

import numpy as np

from fnn import losses
from fnn.model import grads, loss_value
from fnn.tree import Params, tree_leaves_with_path, tree_map

# The largest relative error ``gradcheck`` accepts as a pass: central differences in float64
# at eps around 1e-6 leave about 1e-10 truncation and 1e-16 |L| / eps roundoff, so correct
# gradients stay below 1e-7 on small nets, and a wrong term gives 1e-2 or more.
TOLERANCE = 1e-6


def numerical_grads(
    params: Params, x, y, *, activation: str, loss: str | losses.Loss, eps: float = 1e-6
) -> Params:
    """Central differences in float64, one parameter at a time:
    dL/dtheta_i ~ (L(theta + eps e_i) - L(theta - eps e_i)) / (2 eps)."""
    params64 = tree_map(lambda p: np.array(p, dtype=np.float64), params)
    x64 = np.asarray(x, dtype=np.float64)
    out = tree_map(np.zeros_like, params64)
    for (_, leaf), (_, slot) in zip(
        tree_leaves_with_path(params64), tree_leaves_with_path(out), strict=True
    ):
        flat, flat_slot = leaf.reshape(-1), slot.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = loss_value(params64, x64, y, activation=activation, loss=loss)
            flat[i] = original - eps
            minus = loss_value(params64, x64, y, activation=activation, loss=loss)
            flat[i] = original
            flat_slot[i] = (plus - minus) / (2 * eps)
    return out


def gradcheck(
    params: Params,
    x,
    y,
    *,
    activation: str = "tanh",
    loss: str | losses.Loss = "cross_entropy",
    eps: float = 1e-6,
) -> dict[str, float]:
    """Max relative error of ``fnn.grads`` against central differences, per leaf (float64).

    For a leaf with analytic gradient a and numerical gradient n the error is
    ``max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|)`` (0 when both are zero): the largest
    elementwise error relative to the leaf's gradient scale, so entries that are zero up to
    rounding do not blow up the ratio.
    """
    params64 = tree_map(lambda p: np.array(p, dtype=np.float64), params)
    _, analytic = grads(
        params64, np.asarray(x, dtype=np.float64), y, activation=activation, loss=loss
    )
    numeric = numerical_grads(params64, x, y, activation=activation, loss=loss, eps=eps)
    errors = {}
    for (path, a), (_, n) in zip(
        tree_leaves_with_path(analytic), tree_leaves_with_path(numeric), strict=True
    ):
        scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0))
        errors[path] = float(np.abs(a - n).max(initial=0.0) / scale) if scale > 0 else 0.0
    return errors
