"""Pytrees: nested dicts, lists and tuples (NamedTuples included) whose leaves are arrays.

Parameters and optimizer states are pytrees. These helpers walk them in one deterministic
order (dict keys sorted naturally, so ``layer_2`` comes before ``layer_10``) and refuse to
combine trees whose structures differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

PyTree = Any
Params = dict[str, Any]


def _natural_key(key: Any) -> tuple:
    """Sort key putting ``layer_2`` before ``layer_10``; non-string keys sort by repr."""
    text = key if isinstance(key, str) else repr(key)
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _children(node: Any) -> tuple[list, Callable[[list], Any]] | None:
    """Children of a container node and a function rebuilding it, or None for a leaf."""
    if isinstance(node, dict):
        keys = sorted(node, key=_natural_key)
        return [node[k] for k in keys], lambda values: dict(zip(keys, values, strict=True))
    if _is_namedtuple(node):
        return list(node), lambda values: type(node)(*values)
    if isinstance(node, tuple | list):
        return list(node), lambda values: type(node)(values)
    return None


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return f"dict with keys {sorted(node, key=_natural_key)}"
    if isinstance(node, tuple | list):
        return f"{type(node).__name__} of length {len(node)}"
    return "leaf"


def _check_same_node(path: str, node: Any, other: Any) -> None:
    node_is_leaf = _children(node) is None
    if node_is_leaf and _children(other) is None:
        return
    same = (
        type(node) is type(other)
        and len(node) == len(other)
        and (not isinstance(node, dict) or set(node) == set(other))
    )
    if not same:
        raise ValueError(
            f"pytree structures differ at {path or '<root>'}: "
            f"{_describe(node)} vs {_describe(other)}"
        )


def tree_map(f: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    """Apply ``f`` leaf-wise over ``tree`` and trees of the same structure in ``rest``.

    Raises ``ValueError`` naming the first place where a tree in ``rest`` differs.
    """

    def walk(path: str, node: Any, others: tuple) -> Any:
        for other in others:
            _check_same_node(path, node, other)
        split = _children(node)
        if split is None:
            return f(node, *others)
        children, rebuild = split
        other_children = [_children(o)[0] for o in others]
        labels = sorted(node, key=_natural_key) if isinstance(node, dict) else range(len(node))
        return rebuild(
            [
                walk(f"{path}/{label}", child, tuple(oc[i] for oc in other_children))
                for i, (label, child) in enumerate(zip(labels, children, strict=True))
            ]
        )

    return walk("", tree, rest)


def tree_leaves(tree: PyTree) -> list:
    """The leaves of ``tree`` in the deterministic order used by every function here."""
    return [leaf for _, leaf in tree_leaves_with_path(tree)]


def tree_leaves_with_path(tree: PyTree) -> list[tuple[str, Any]]:
    """``(path, leaf)`` pairs, e.g. ``("layer_0/w", array)``, in deterministic order."""
    out: list[tuple[str, Any]] = []

    def walk(path: str, node: Any) -> None:
        split = _children(node)
        if split is None:
            out.append((path, node))
            return
        children, _ = split
        labels = sorted(node, key=_natural_key) if isinstance(node, dict) else range(len(node))
        for label, child in zip(labels, children, strict=True):
            walk(f"{path}/{label}" if path else str(label), child)

    walk("", tree)
    return out


def tree_zeros_like(tree: PyTree) -> PyTree:
    """A tree of zero arrays with the shapes and dtypes of ``tree``'s leaves."""
    return tree_map(np.zeros_like, tree)


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` leaf-wise, keeping each parameter's dtype (as ``optax.apply_updates``).

    Updates are already signed: an optimizer returns ``-learning_rate * direction``.
    Neither argument is modified.
    """

    def add(param: np.ndarray, update: np.ndarray) -> np.ndarray:
        if np.shape(param) != np.shape(update):
            raise ValueError(
                f"update of shape {np.shape(update)} does not match parameter of shape "
                f"{np.shape(param)}"
            )
        return np.add(param, update, dtype=np.asarray(param).dtype)

    return tree_map(add, params, updates)
