"""Pytrees: nested dicts, lists and tuples (NamedTuples included) whose leaves are arrays.

Parameters, gradients and updates are pytrees. These helpers walk them in one deterministic
order (dict keys sorted naturally, so ``layer_2`` comes before ``layer_10``) and refuse to
combine trees whose structures differ. None of them writes its arguments.

``flat, layout = ravel(tree)`` is the one bridge to a flat array, as JAX's ``ravel_pytree``,
and ``layout.unravel(flat)`` gives the tree back; a ``Layout`` is only a frozen description.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from ctypes import addressof, c_char
from itertools import accumulate
from typing import Any, NamedTuple

import numpy as np

PyTree = Any
Params = dict[str, Any]


def _natural_key(key: Any) -> tuple:
    """Sort key putting ``layer_2`` before ``layer_10``; non-string keys sort by repr."""
    text = key if isinstance(key, str) else repr(key)
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


@functools.lru_cache(maxsize=1024)
def _sorted(keys: tuple) -> tuple:
    """``keys`` in natural order (remembered: the same key sets come back every step)."""
    return tuple(sorted(keys, key=_natural_key))


class Layout(NamedTuple):
    """Where each leaf of a tree lives in one flat array: the tree's structure (``treedef``,
    nested tuples as ``_flatten`` writes them), each leaf's shape, dtype and ``(start, stop)``
    in the flat array, the flat size and dtype (the leaves' common one).

    A frozen description and nothing more, so two layouts are equal when the trees they
    describe are alike. Tree functions treat a layout as static data, never as a container."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]
    bounds: tuple[tuple[int, int], ...]
    size: int
    dtype: np.dtype

    def unravel(self, flat: np.ndarray) -> PyTree:
        """The tree whose leaves are ``flat``'s consecutive pieces, reshaped: views of
        ``flat`` (no copy) when it is a 1-D array of this layout's dtype, and each leaf in its
        own dtype (a copy where that differs from the flat one)."""
        if type(flat) is not np.ndarray or flat.shape != (self.size,) or flat.dtype != self.dtype:
            flat = np.asarray(flat)
            if flat.shape != (self.size,):
                raise ValueError(f"a flat array of {self.size} values expected, got {flat.shape}")
            flat = flat.astype(self.dtype)
        leaves = []
        for (start, stop), shape, dtype in zip(self.bounds, self.shapes, self.dtypes, strict=True):
            leaf = flat[start:stop] if len(shape) == 1 else flat[start:stop].reshape(shape)
            leaves.append(
                leaf if dtype is self.dtype or dtype == self.dtype else leaf.astype(dtype)
            )
        return _build(self.treedef, iter(leaves))


@functools.lru_cache(maxsize=256)
def _layout(treedef: Any, shapes: tuple, dtypes: tuple) -> Layout:
    """The ``Layout`` of such leaves in such a tree (remembered: a run's trees are alike)."""
    ends = tuple(accumulate((math.prod(shape) for shape in shapes), initial=0))
    bounds = tuple(zip(ends[:-1], ends[1:], strict=True))
    dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    return Layout(treedef, shapes, dtypes, bounds, ends[-1], dtype)


def _flatten(node: Any, leaves: list) -> Any:
    """``node``'s structure as nested tuples, ``(type, dict keys or static data, children)``
    with None for a leaf, appending its leaves to ``leaves`` in order. It runs at every step,
    so array children are taken in the loop and there are no comprehensions."""
    if isinstance(node, dict):
        keys = _sorted(tuple(node))
        children = []
        for key in keys:
            child = node[key]
            if type(child) is np.ndarray:
                leaves.append(child)
                children.append(None)
            else:
                children.append(_flatten(child, leaves))
        return (dict, keys, tuple(children))
    if isinstance(node, Layout):
        return (Layout, node, ())
    if isinstance(node, tuple | list):
        children = []
        for child in node:
            children.append(_flatten(child, leaves))
        return (type(node), None, tuple(children))
    leaves.append(node)
    return None


def _build(treedef: Any, leaves) -> PyTree:
    """The tree of structure ``treedef`` with the next leaves of the iterator ``leaves``."""
    if treedef is None:
        return next(leaves)
    kind, keys, children = treedef
    if kind is dict:
        out = {}
        for key, child in zip(keys, children, strict=True):
            if child is None:
                out[key] = next(leaves)
            elif child[0] is dict and child[2].count(None) == len(child[2]):  # a dict of leaves
                out[key] = dict(zip(child[1], leaves, strict=False))  # stops at the last key
            else:
                out[key] = _build(child, leaves)
        return out
    if kind is Layout:
        return keys
    values = [_build(child, leaves) for child in children]
    return kind(*values) if hasattr(kind, "_fields") else kind(values)


def ravel(tree: PyTree) -> tuple[np.ndarray, Layout]:
    """``(flat, layout)``: every leaf of ``tree`` in one 1-D array (in ``tree_leaves`` order,
    in their common dtype), and the description from which ``layout.unravel(flat)`` rebuilds
    ``tree``, as JAX's ``ravel_pytree``. As ``np.ravel``, ``flat`` is the memory the leaves
    already share when they lie in order in one 1-D array (as the leaves of every tree fnn
    returns do; checked by address), else a new copy: read it, never write it."""
    leaves: list = []
    treedef = _flatten(tree, leaves)
    shapes, dtypes = [], []
    for index, leaf in enumerate(leaves):
        if type(leaf) is not np.ndarray:
            leaves[index] = leaf = np.asarray(leaf)
        shapes.append(leaf.shape)
        dtypes.append(leaf.dtype)
    layout = _layout(treedef, tuple(shapes), tuple(dtypes))
    dtype, base = layout.dtype, leaves[0].base if leaves else None
    if type(base) is np.ndarray and base.shape == (layout.size,) and base.dtype == dtype:
        try:  # ctypes reads an array's address from its buffer 4x faster than NumPy's getters
            address, itemsize = addressof(c_char.from_buffer(base)), dtype.itemsize
            for leaf, (start, _) in zip(leaves, layout.bounds, strict=True):
                if (
                    leaf.base is not base
                    or leaf.dtype != dtype
                    or not leaf.flags.c_contiguous
                    or addressof(c_char.from_buffer(leaf)) != address + start * itemsize
                ):
                    break  # fmt: skip
            else:
                return base, layout
        except (TypeError, ValueError, BufferError):  # read-only or empty: not one of fnn's
            pass
    flat = np.empty(layout.size, dtype)
    if leaves:
        np.concatenate(leaves, axis=None, out=flat, casting="unsafe")
    return flat, layout


def _labelled(node: Any) -> list[tuple[str, Any]] | None:
    """``(label, child)`` pairs of a container node (dict keys in order, NamedTuple field names,
    indices), or None for a leaf; a ``Layout`` is a node without children (static data)."""
    if isinstance(node, dict):
        return [(str(key), node[key]) for key in _sorted(tuple(node))]
    if isinstance(node, Layout):
        return []
    if isinstance(node, tuple | list):
        labels = getattr(node, "_fields", None) or [str(i) for i in range(len(node))]
        return list(zip(labels, node, strict=True))
    return None


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return f"a dict with keys {list(_sorted(tuple(node)))}"
    if isinstance(node, Layout):
        return f"a layout of {node.size} {node.dtype} values"
    if isinstance(node, tuple | list):
        return f"a {type(node).__name__} of length {len(node)}"
    return f"a leaf of shape {np.shape(node)}" if isinstance(node, np.ndarray) else "a leaf"


def _node_differs(node: Any, other: Any) -> bool:
    if _labelled(node) is None:
        return _labelled(other) is not None
    if isinstance(node, Layout):
        return node != other
    return not (
        type(node) is type(other)
        and len(node) == len(other)
        and (not isinstance(node, dict) or node.keys() == other.keys())
    )


def difference(tree: PyTree, other: PyTree, *, shapes: bool = False) -> str | None:
    """Where ``other`` first differs from ``tree`` in structure (and leaf shapes, with
    ``shapes``), as ``"at layer_0/b: a leaf of shape (3,) where ... has ..."``; None if alike."""

    def find(path: str, node: Any, peer: Any) -> tuple[str, str] | None:
        where = path or "the root"
        if _node_differs(node, peer):
            return f"at {where}: {_describe(peer)}", _describe(node)
        children = _labelled(node)
        if children is None:
            if shapes and np.shape(node) != np.shape(peer):
                return f"at {where}: shape {np.shape(peer)}", f"shape {np.shape(node)}"
            return None
        for (label, child), (_, peer_child) in zip(children, _labelled(peer), strict=True):
            found = find(f"{path}/{label}" if path else label, child, peer_child)
            if found is not None:
                return found
        return None

    found = find("", tree, other)
    return None if found is None else f"{found[0]} where it should have {found[1]}"


def tree_map(f: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    """Apply ``f`` leaf-wise over ``tree`` and trees of the same structure in ``rest``.

    Raises ``ValueError`` naming the first place where a tree in ``rest`` differs.
    """
    leaves: list = []
    treedef, columns = _flatten(tree, leaves), [leaves]
    for other in rest:
        columns.append([])
        if _flatten(other, columns[-1]) != treedef:
            raise _mismatch(tree, rest)
    return _build(treedef, iter([f(*leaf) for leaf in zip(*columns, strict=True)]))


def _mismatch(tree: PyTree, rest: tuple) -> ValueError:
    for position, other in enumerate(rest, start=2):
        found = difference(tree, other)
        if found is not None:
            return ValueError(f"pytree structures differ: tree {position} has {found}")
    return ValueError("pytree structures differ")


def tree_leaves(tree: PyTree) -> list:
    """The leaves of ``tree`` in the deterministic order used by every function here."""
    leaves: list = []
    _flatten(tree, leaves)
    return leaves


def tree_leaves_with_path(tree: PyTree) -> list[tuple[str, Any]]:
    """``(path, leaf)`` pairs, e.g. ``("layer_0/w", array)`` or ``("first_moment", array)``
    for a NamedTuple's field, in deterministic order."""
    out: list[tuple[str, Any]] = []

    def walk(path: str, node: Any) -> None:
        children = _labelled(node)
        if children is None:
            out.append((path, node))
            return
        for label, child in children:
            walk(f"{path}/{label}" if path else label, child)

    walk("", tree)
    return out


def tree_zeros_like(tree: PyTree) -> PyTree:
    """A tree of zero arrays with the shapes and dtypes of ``tree``'s leaves."""
    return tree_map(np.zeros_like, tree)


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` leaf by leaf, each in its parameter's dtype (as
    ``optax.apply_updates``), into the views of one new flat array laid out as ``ravel(params)``
    (a new array per leaf whose dtype differs from the others'). Updates are already signed: an
    optimizer returns ``-learning_rate * direction``. Neither argument is written."""
    param_leaves, update_leaves = [], []
    treedef = _flatten(params, param_leaves)
    if _flatten(updates, update_leaves) != treedef:
        raise ValueError(f"updates differ from params {difference(params, updates)}")
    shapes, dtypes = [], []
    for index, (param, update) in enumerate(zip(param_leaves, update_leaves, strict=True)):
        if type(param) is not np.ndarray:
            param = param_leaves[index] = np.asarray(param)
        if param.shape != (update.shape if type(update) is np.ndarray else np.shape(update)):
            raise ValueError(
                f"updates differ from params {difference(params, updates, shapes=True)}"
            )
        shapes.append(param.shape)
        dtypes.append(param.dtype)
    layout = _layout(treedef, tuple(shapes), tuple(dtypes))
    flat, new = np.empty(layout.size, layout.dtype), []
    for param, update, (start, stop), shape, dtype in zip(
        param_leaves, update_leaves, layout.bounds, layout.shapes, layout.dtypes, strict=True
    ):
        out = flat[start:stop].reshape(shape) if dtype == layout.dtype else np.empty(shape, dtype)
        new.append(np.add(param, update, out=out, casting="unsafe"))
    return _build(treedef, iter(new))
