"""fnn: a small, exact and fast training core for feedforward neural networks in NumPy.

Parameters are pytrees (nested dicts of arrays) passed through pure functions::

    params = fnn.init_mlp([784, 128, 10])
    opt = fnn.optimizers.adam(1e-3)
    state = opt.init(params)
    loss, g = fnn.grads(params, x, y)
    updates, state = opt.update(g, state, params, loss=loss)
    params = fnn.apply_updates(params, updates)
"""

from fnn import activations, init, losses, optimizers, tree
from fnn.activations import softmax
from fnn.gradcheck import gradcheck
from fnn.model import forward, grads, init_mlp, loss_value
from fnn.optimizers import Optimizer
from fnn.tree import apply_updates, tree_leaves, tree_map, tree_zeros_like

__version__ = "0.1.0"

__all__ = [
    "Optimizer",
    "activations",
    "apply_updates",
    "forward",
    "gradcheck",
    "grads",
    "init",
    "init_mlp",
    "loss_value",
    "losses",
    "optimizers",
    "softmax",
    "tree",
    "tree_leaves",
    "tree_map",
    "tree_zeros_like",
]
