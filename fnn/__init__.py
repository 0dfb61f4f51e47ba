"""fnn: a small, exact and fast training core for feedforward neural networks in NumPy.

Parameters are pytrees (nested dicts of arrays) passed through pure functions::

    params = fnn.init_mlp([784, 128, 10])
    opt = fnn.optimizers.adam(1e-3)
    state = opt.init(params)
    loss, g = fnn.grads(params, x, y)
    updates, state = opt.update(g, state, params, loss=loss)
    params = fnn.apply_updates(params, updates)
"""

from fnn import activations, init, losses, metrics, optimizers, tree, tree_io, tree_math
from fnn.activations import softmax
from fnn.gradcheck import gradcheck
from fnn.metrics import evaluate
from fnn.model import forward, grads, init_mlp, loss_value
from fnn.optimizers import Optimizer
from fnn.tree import (
    Layout,
    apply_updates,
    ravel,
    tree_leaves,
    tree_leaves_with_path,
    tree_map,
    tree_zeros_like,
)
from fnn.tree_io import from_arrays, load_tree, save_tree, to_arrays
from fnn.tree_math import global_norm, tree_add, tree_allclose, tree_scale, tree_vdot

__version__ = "0.1.0"

__all__ = [
    "Layout",
    "Optimizer",
    "activations",
    "apply_updates",
    "evaluate",
    "forward",
    "from_arrays",
    "global_norm",
    "gradcheck",
    "grads",
    "init",
    "init_mlp",
    "load_tree",
    "loss_value",
    "losses",
    "metrics",
    "optimizers",
    "ravel",
    "save_tree",
    "softmax",
    "to_arrays",
    "tree",
    "tree_add",
    "tree_allclose",
    "tree_leaves",
    "tree_leaves_with_path",
    "tree_map",
    "tree_io",
    "tree_math",
    "tree_scale",
    "tree_vdot",
    "tree_zeros_like",
]
