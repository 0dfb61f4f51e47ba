"""Arithmetic over pytrees, leaf by leaf, as ``optax.tree_utils``: sums, scaling, inner
products, the global norm and closeness. Every function returns new values and checks that its
trees have one structure (``fnn.tree.tree_map``'s message names the first difference)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fnn.tree import PyTree, difference, tree_leaves, tree_map


def tree_add(tree: PyTree, *others: PyTree) -> PyTree:
    """The leaf-wise sum ``tree + others[0] + ...``."""
    return tree_map(lambda leaf, *rest: sum(rest, start=np.asarray(leaf)), tree, *others)


def tree_scale(tree: PyTree, factor: float) -> PyTree:
    """Every leaf times ``factor``, in the leaf's dtype for a Python float (NEP 50)."""
    return tree_map(lambda leaf: np.multiply(leaf, factor), tree)


def tree_vdot(tree: PyTree, other: PyTree) -> float:
    """The inner product ``sum_leaves sum_i tree_i * other_i`` (``optax.tree_utils.tree_vdot``)."""
    products = tree_leaves(tree_map(lambda a, b: np.vdot(a, b), tree, other))
    return float(sum(products))


def global_norm(tree: PyTree) -> float:
    """``sqrt(sum_leaves sum_i leaf_i^2)``, the Euclidean norm of all leaves together
    (``optax.global_norm``)."""
    return math.sqrt(sum(float(np.vdot(leaf, leaf)) for leaf in tree_leaves(tree)))


def tree_allclose(tree: PyTree, other: PyTree, *, rtol: float = 1e-7, atol: float = 0.0) -> bool:
    """Whether the two trees have one structure (static data such as a ``Layout`` equal) and
    every pair of leaves has one shape and is close: ``|a - b| <= atol + rtol |b|`` elementwise
    (``np.allclose``; nan equals nan). ``tree_allclose(a, b, rtol=0)`` is exact equality."""
    if difference(tree, other, shapes=True) is not None:
        return False
    pairs = zip(tree_leaves(tree), tree_leaves(other), strict=True)
    return all(_close(a, b, rtol, atol) for a, b in pairs)


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind not in "biufc" or b.dtype.kind not in "biufc":
        return bool(np.array_equal(a, b))
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
