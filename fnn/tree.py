"""Pytrees: nested dicts, lists and tuples (NamedTuples included) whose leaves are arrays.

Parameters and optimizer states are pytrees. These helpers walk them in one deterministic
order (dict keys sorted naturally, so ``layer_2`` comes before ``layer_10``) and refuse to
combine trees whose structures differ.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

PyTree = Any
Params = dict[str, Any]


def _natural_key(key: Any) -> tuple:
    """Sort key putting ``layer_2`` before ``layer_10``; non-string keys sort by repr."""
    text = key if isinstance(key, str) else repr(key)
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


@functools.lru_cache(maxsize=1024)
def _ordered(keys: tuple) -> tuple:
    """The keys of a dict in natural order (cached: the same few layouts recur every step)."""
    return tuple(sorted(keys, key=_natural_key))


def _keys(node: dict) -> tuple:
    try:
        return _ordered(tuple(node))
    except TypeError:  # unhashable or unorderable keys: sort without the cache
        return tuple(sorted(node, key=_natural_key))


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _children(node: Any) -> tuple[list, Callable[[list], Any]] | None:
    """Children of a container node and a function rebuilding it, or None for a leaf."""
    if isinstance(node, dict):
        keys = _keys(node)
        return [node[k] for k in keys], lambda values: dict(zip(keys, values, strict=True))
    if _is_namedtuple(node):
        return list(node), lambda values: type(node)(*values)
    if isinstance(node, tuple | list):
        return list(node), lambda values: type(node)(values)
    return None


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return f"dict with keys {list(_keys(node))}"
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

    def walk(node: Any, others: tuple) -> Any:
        if isinstance(node, dict):
            for other in others:
                if not isinstance(other, dict) or other.keys() != node.keys():
                    raise _mismatch(tree, rest)
            return {key: walk(node[key], tuple(o[key] for o in others)) for key in _keys(node)}
        split = _children(node)
        if split is None:
            if any(_children(other) is not None for other in others):
                raise _mismatch(tree, rest)
            return f(node, *others)
        children, rebuild = split
        for other in others:
            if type(other) is not type(node) or len(other) != len(node):
                raise _mismatch(tree, rest)
        return rebuild(
            [walk(child, tuple(o[i] for o in others)) for i, child in enumerate(children)]
        )

    return walk(tree, rest)


def _mismatch(tree: PyTree, rest: tuple) -> ValueError:
    """The error for the first place where a tree in ``rest`` differs from ``tree``."""

    def find(path: str, node: Any, others: tuple) -> ValueError | None:
        for other in others:
            try:
                _check_same_node(path, node, other)
            except ValueError as error:
                return error
        split = _children(node)
        if split is None:
            return None
        labels = _keys(node) if isinstance(node, dict) else range(len(node))
        for label in labels:
            found = find(f"{path}/{label}", node[label], tuple(o[label] for o in others))
            if found is not None:
                return found
        return None

    return find("", tree, rest) or ValueError("pytree structures differ")


def tree_leaves(tree: PyTree) -> list:
    """The leaves of ``tree`` in the deterministic order used by every function here."""
    out: list = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in _keys(node):
                walk(node[key])
        elif isinstance(node, tuple | list):
            for child in node:
                walk(child)
        else:
            out.append(node)

    walk(tree)
    return out


def tree_leaves_with_path(tree: PyTree) -> list[tuple[str, Any]]:
    """``(path, leaf)`` pairs, e.g. ``("layer_0/w", array)``, in deterministic order."""
    out: list[tuple[str, Any]] = []

    def walk(path: str, node: Any) -> None:
        split = _children(node)
        if split is None:
            out.append((path, node))
            return
        children, _ = split
        labels = _keys(node) if isinstance(node, dict) else range(len(node))
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
    Neither argument is modified. When both are views of flat buffers of one layout (what
    ``init_mlp``, ``grads`` and the optimizers return) this is a single addition, and the
    result is again such a view tree.
    """
    param_leaves, update_leaves = tree_leaves(params), tree_leaves(updates)
    flat_params, flat_updates = _backing(param_leaves), _backing(update_leaves)
    if (
        flat_params is not None
        and flat_updates is not None
        and flat_params[1].shapes == flat_updates[1].shapes
        and (flat_params[1] is flat_updates[1] or _same_structure(params, updates))
    ):
        buffer, layout = flat_params
        return layout.unpack(np.add(buffer, flat_updates[0], dtype=buffer.dtype, casting="unsafe"))
    if len({np.asarray(leaf).dtype for leaf in param_leaves}) > 1:  # mixed precision: per leaf
        return tree_map(_add_keeping_dtype, params, updates)
    layout = Layout(params)
    new = layout.unpack(np.empty(layout.size, layout.dtype))

    def add(param: np.ndarray, update: np.ndarray, out: np.ndarray) -> None:
        out[...] = _add_keeping_dtype(param, update)

    tree_map(add, params, updates, new)
    return new


def _add_keeping_dtype(param: np.ndarray, update: np.ndarray) -> np.ndarray:
    if np.shape(param) != np.shape(update):
        raise ValueError(
            f"update of shape {np.shape(update)} does not match parameter of shape "
            f"{np.shape(param)}"
        )
    return np.add(param, update, dtype=np.asarray(param).dtype, casting="unsafe")


def _same_structure(tree: PyTree, other: PyTree) -> bool:
    try:
        tree_map(lambda *_: None, tree, other)
    except ValueError:
        return False
    return True


def _builder(node: Any) -> Callable[[Any], Any]:
    """A function rebuilding ``node``'s structure from an iterator over its new leaves."""
    if isinstance(node, dict):
        keys = _keys(node)
        parts = [_builder(node[key]) for key in keys]
        return lambda leaves: {key: part(leaves) for key, part in zip(keys, parts, strict=True)}
    split = _children(node)
    if split is None:
        return next
    children, rebuild = split
    parts = [_builder(child) for child in children]
    return lambda leaves: rebuild([part(leaves) for part in parts])


# Buffers handed out by Layout.unpack, by id: (weak reference, layout, ids of the views).
# It lets pack() recognise a tree of those views without comparing memory addresses.
_ISSUED: dict[int, tuple[weakref.ref, Layout, tuple[int, ...]]] = {}


def _forget(key: int) -> Callable[[Any], None]:
    return lambda _: _ISSUED.pop(key, None)


class Layout:
    """Where each array leaf of a pytree lives in one flat, contiguous buffer.

    ``unpack(buffer)`` gives a pytree whose leaves are views of ``buffer``; ``pack(tree)``
    returns that buffer again without copying when ``tree`` is such a view tree (else one
    concatenation). Optimizers use it to apply each equation in one NumPy call over every
    parameter while callers keep seeing ordinary pytrees.
    """

    def __init__(self, tree: PyTree, dtype=None):
        leaves = tree_leaves(tree)
        self.shapes = tuple(np.shape(leaf) for leaf in leaves)
        self.sizes = tuple(int(np.prod(shape)) for shape in self.shapes)
        self.offsets = tuple(int(o) for o in np.cumsum((0, *self.sizes))[:-1])
        self.size = sum(self.sizes)
        self.dtype = np.dtype(dtype if dtype is not None else np.result_type(*leaves))
        self._build = _builder(tree)

    def unpack(self, buffer: np.ndarray) -> PyTree:
        """A tree of this layout whose leaves are views of the 1-D ``buffer``."""
        views = [
            buffer[offset : offset + size].reshape(shape)
            for offset, size, shape in zip(self.offsets, self.sizes, self.shapes, strict=True)
        ]
        key = id(buffer)
        _ISSUED[key] = (weakref.ref(buffer, _forget(key)), self, tuple(map(id, views)))
        return self._build(iter(views))

    def zeros(self) -> PyTree:
        return self.unpack(np.zeros(self.size, self.dtype))

    def pack(self, tree: PyTree) -> np.ndarray:
        """The flat buffer behind ``tree`` (no copy if it is one), in this layout's dtype."""
        leaves = tree_leaves(tree)
        found = _backing(leaves)
        if found is not None and found[1].shapes == self.shapes:
            return found[0] if found[0].dtype == self.dtype else found[0].astype(self.dtype)
        if [np.shape(leaf) for leaf in leaves] != list(self.shapes):
            raise ValueError(
                f"tree leaves of shapes {[np.shape(leaf) for leaf in leaves]} do not match the "
                f"layout's {list(self.shapes)}"
            )
        return np.concatenate([np.ravel(leaf) for leaf in leaves]).astype(self.dtype, copy=False)


def _backing(leaves: list) -> tuple[np.ndarray, Layout] | None:
    """``(buffer, layout)`` if ``leaves`` are exactly the views ``Layout.unpack`` made of it."""
    if not leaves:
        return None
    buffer = getattr(leaves[0], "base", None)
    entry = _ISSUED.get(id(buffer)) if buffer is not None else None
    if entry is None or entry[0]() is not buffer or entry[2] != tuple(map(id, leaves)):
        return None
    return buffer, entry[1]


def layout_of(tree: PyTree) -> Layout:
    """The layout ``tree`` was unpacked with, or a new one for it."""
    return flatten(tree)[1]


def flatten(tree: PyTree) -> tuple[np.ndarray, Layout]:
    """``(buffer, layout)`` with ``layout.unpack(buffer)`` equal to ``tree``: the buffer behind
    a tree of views (no copy, so never write to it), else a new concatenation."""
    leaves = tree_leaves(tree)
    found = _backing(leaves)
    if found is not None:
        return found
    layout = Layout(tree)
    flat = np.concatenate([np.ravel(leaf) for leaf in leaves]).astype(layout.dtype, copy=False)
    return flat, layout
