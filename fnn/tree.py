"""Pytrees: nested dicts, lists and tuples (NamedTuples included) whose leaves are arrays.

Parameters, gradients and updates are pytrees. These helpers walk them in one deterministic
order (dict keys sorted naturally, so ``layer_2`` comes before ``layer_10``) and refuse to
combine trees whose structures differ. None of them writes its arguments.

``ravel`` is the one bridge between a tree and a flat array, as JAX's ``ravel_pytree``:
``flat, layout = ravel(tree)`` and ``layout.unravel(flat)`` gives the tree back. A ``Layout`` is
only a description (structure, shapes, offsets, dtype), equal for trees alike in all of them.
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


def _keys(node: dict) -> tuple:
    return _sorted(tuple(node))


class Layout(NamedTuple):
    """Where each leaf of a tree lives in one flat array: the tree's structure (``treedef``,
    nested tuples as ``_flatten`` writes them), each leaf's shape and ``(start, stop)`` in the
    flat array, the flat size and dtype.

    A frozen description and nothing more, so two layouts are equal when the trees they
    describe are alike. Tree functions treat a layout as static data, never as a container."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    bounds: tuple[tuple[int, int], ...]
    size: int
    dtype: np.dtype

    def unravel(self, flat: np.ndarray) -> PyTree:
        """The tree whose leaves are ``flat``'s consecutive pieces, reshaped: views of
        ``flat`` (no copy) when it is a 1-D array of this layout's dtype, else of a copy."""
        flat = np.asarray(flat)
        if flat.shape != (self.size,):
            raise ValueError(f"a flat array of {self.size} values expected, got {flat.shape}")
        flat = flat.astype(self.dtype, copy=False)
        views = []
        for (start, stop), shape in zip(self.bounds, self.shapes, strict=True):
            views.append(flat[start:stop].reshape(shape))
        return _build(self.treedef, iter(views))

    def zeros(self) -> PyTree:
        """A tree of this layout filled with zeros (one new flat array)."""
        return self.unravel(np.zeros(self.size, self.dtype))


@functools.lru_cache(maxsize=256)
def _layout(treedef: Any, shapes: tuple, dtype: np.dtype) -> Layout:
    """The ``Layout`` of leaves of ``shapes`` in a tree of structure ``treedef`` (remembered:
    the trees of one training run are laid out alike, step after step)."""
    ends = tuple(accumulate((math.prod(shape) for shape in shapes), initial=0))
    bounds = tuple(zip(ends[:-1], ends[1:], strict=True))
    return Layout(treedef, shapes, bounds, ends[-1], np.dtype(dtype))


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
            out[key] = next(leaves) if child is None else _build(child, leaves)
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
    shapes, dtype, mixed = [], None, False
    for index, leaf in enumerate(leaves):
        if type(leaf) is not np.ndarray:
            leaves[index] = leaf = np.asarray(leaf)
        shapes.append(leaf.shape)
        mixed = mixed or (dtype is not None and leaf.dtype != dtype)
        dtype = leaf.dtype if dtype is None else dtype
    if mixed or dtype is None:
        dtype = np.result_type(*leaves) if leaves else np.dtype(np.float64)
    layout = _layout(treedef, tuple(shapes), dtype)
    base = leaves[0].base if leaves and not mixed else None
    if type(base) is np.ndarray and base.shape == (layout.size,) and base.dtype == dtype:
        try:  # ctypes reads an array's address from its buffer 4x faster than NumPy's getters
            address, itemsize = addressof(c_char.from_buffer(base)), dtype.itemsize
            for leaf, (start, _) in zip(leaves, layout.bounds, strict=True):
                if (
                    leaf.base is not base
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


def _children(node: Any) -> list | None:
    """The children of a container node, in order, or None for a leaf (a ``Layout`` is a node
    without children: static data, as JAX's auxiliary data)."""
    if isinstance(node, dict):
        return [node[key] for key in _keys(node)]
    if isinstance(node, Layout):
        return []
    if isinstance(node, tuple | list):
        return list(node)
    return None


def _labels(node: Any) -> list[str]:
    """The path label of each child: dict keys, NamedTuple field names, list indices."""
    if isinstance(node, dict):
        return [str(key) for key in _keys(node)]
    if isinstance(node, Layout):
        return []
    return list(getattr(node, "_fields", None) or map(str, range(len(node))))


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return f"a dict with keys {list(_keys(node))}"
    if isinstance(node, Layout):
        return "a layout"
    if isinstance(node, tuple | list):
        return f"a {type(node).__name__} of length {len(node)}"
    return f"a leaf of shape {np.shape(node)}" if isinstance(node, np.ndarray) else "a leaf"


def _node_differs(node: Any, other: Any) -> bool:
    if _children(node) is None:
        return _children(other) is not None
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
        children = _children(node)
        if children is None:
            if shapes and np.shape(node) != np.shape(peer):
                return f"at {where}: shape {np.shape(peer)}", f"shape {np.shape(node)}"
            return None
        peers = _children(peer)
        for label, child, peer_child in zip(_labels(node), children, peers, strict=True):
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

    def walk(node: Any, others: tuple) -> Any:
        if isinstance(node, dict):
            for other in others:
                if not isinstance(other, dict) or other.keys() != node.keys():
                    raise _mismatch(tree, rest)
            return {key: walk(node[key], tuple(o[key] for o in others)) for key in _keys(node)}
        children = _children(node)
        if children is None:
            if any(_children(other) is not None for other in others):
                raise _mismatch(tree, rest)
            return f(node, *others)
        if isinstance(node, Layout):
            if any(other != node for other in others):
                raise _mismatch(tree, rest)
            return node
        for other in others:
            if type(other) is not type(node) or len(other) != len(node):
                raise _mismatch(tree, rest)
        values = [walk(child, tuple(o[i] for o in others)) for i, child in enumerate(children)]
        return type(node)(*values) if hasattr(node, "_fields") else type(node)(values)

    return walk(tree, rest)


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
        children = _children(node)
        if children is None:
            out.append((path, node))
            return
        for label, child in zip(_labels(node), children, strict=True):
            walk(f"{path}/{label}" if path else label, child)

    walk("", tree)
    return out


def tree_zeros_like(tree: PyTree) -> PyTree:
    """A tree of zero arrays with the shapes and dtypes of ``tree``'s leaves."""
    return tree_map(np.zeros_like, tree)


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype (as
    ``optax.apply_updates``), into one new flat array laid out as ``ravel(params)`` (one array
    per leaf when the params' dtypes differ). Updates are already signed: an optimizer returns
    ``-learning_rate * direction``. Neither argument is written."""
    param_leaves, update_leaves = [], []
    treedef = _flatten(params, param_leaves)
    if _flatten(updates, update_leaves) != treedef:
        raise ValueError(f"updates differ from params {difference(params, updates)}")
    shapes, dtypes = [], set()
    for index, (param, update) in enumerate(zip(param_leaves, update_leaves, strict=True)):
        param = param_leaves[index] = np.asarray(param)
        if param.shape != np.shape(update):
            problem = difference(params, updates, shapes=True)
            raise ValueError(f"updates differ from params {problem}")
        shapes.append(param.shape)
        dtypes.add(param.dtype)
    if len(dtypes) > 1:  # mixed precision: each leaf keeps its own dtype
        new = [np.add(p, u, dtype=p.dtype, casting="unsafe")
               for p, u in zip(param_leaves, update_leaves, strict=True)]  # fmt: skip
        return _build(treedef, iter(new))
    layout = _layout(treedef, tuple(shapes), dtypes.pop() if dtypes else np.dtype(np.float64))
    flat, new = np.empty(layout.size, layout.dtype), []
    for param, update, (start, stop), shape in zip(
        param_leaves, update_leaves, layout.bounds, layout.shapes, strict=True
    ):
        new.append(np.add(param, update, out=flat[start:stop].reshape(shape), casting="unsafe"))
    return _build(treedef, iter(new))
