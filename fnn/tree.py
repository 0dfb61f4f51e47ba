"""Pytrees: nested dicts, lists and tuples (NamedTuples included) whose leaves are arrays.

Parameters and optimizer states are pytrees. These helpers walk them in one deterministic
order (dict keys sorted naturally, so ``layer_2`` comes before ``layer_10``) and refuse to
combine trees whose structures differ. None of them writes its arguments.

``Layout`` places every leaf of a tree in one flat buffer, so that an optimizer equation is one
NumPy call over all parameters. A tree that ``Layout.unpack`` made is recognised structurally,
from the buffer its leaves are views of; no registry is kept anywhere.
"""

from __future__ import annotations

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


def _keys(node: dict) -> tuple:
    return tuple(sorted(node, key=_natural_key))


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _children(node: Any) -> tuple[list, Callable[[list], Any]] | None:
    """Children of a container node and a function rebuilding it, or None for a leaf.
    A ``Layout`` is a node without children (static data, as JAX's auxiliary data)."""
    if isinstance(node, dict):
        keys = _keys(node)
        return [node[k] for k in keys], lambda values: dict(zip(keys, values, strict=True))
    if _is_namedtuple(node):
        return list(node), lambda values: type(node)(*values)
    if isinstance(node, tuple | list):
        return list(node), lambda values: type(node)(values)
    if isinstance(node, Layout):
        return [], lambda values: node
    return None


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return f"a dict with keys {list(_keys(node))}"
    if isinstance(node, tuple | list):
        return f"a {type(node).__name__} of length {len(node)}"
    if isinstance(node, Layout):
        return "a layout"
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

    def find(path: str, node: Any, peer: Any) -> str | None:
        where = path or "the root"
        if _node_differs(node, peer):
            return f"at {where}: {_describe(peer)}", _describe(node)
        split = _children(node)
        if split is None:
            if shapes and np.shape(node) != np.shape(peer):
                return f"at {where}: shape {np.shape(peer)}", f"shape {np.shape(node)}"
            return None
        labels = _keys(node) if isinstance(node, dict) else range(len(split[0]))
        for label in labels:
            found = find(f"{path}/{label}" if path else str(label), node[label], peer[label])
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
        split = _children(node)
        if split is None:
            if any(_children(other) is not None for other in others):
                raise _mismatch(tree, rest)
            return f(node, *others)
        if isinstance(node, Layout):
            if any(other != node for other in others):
                raise _mismatch(tree, rest)
            return node
        children, rebuild = split
        for other in others:
            if type(other) is not type(node) or len(other) != len(node):
                raise _mismatch(tree, rest)
        return rebuild(
            [walk(child, tuple(o[i] for o in others)) for i, child in enumerate(children)]
        )

    return walk(tree, rest)


def _mismatch(tree: PyTree, rest: tuple) -> ValueError:
    for position, other in enumerate(rest, start=2):
        found = difference(tree, other)
        if found is not None:
            return ValueError(f"pytree structures differ: tree {position} has {found}")
    return ValueError("pytree structures differ")


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
        elif not isinstance(node, Layout):
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
        for label, child in zip(labels, children, strict=False):
            walk(f"{path}/{label}" if path else str(label), child)

    walk("", tree)
    return out


def tree_zeros_like(tree: PyTree) -> PyTree:
    """A tree of zero arrays with the shapes and dtypes of ``tree``'s leaves."""
    return tree_map(np.zeros_like, tree)


class DonatedError(ValueError):
    """A tree whose buffers were donated (``donate=True``) was used after the donation."""


class _Buffer(np.ndarray):
    """The owner of a flat buffer that ``Layout.unpack`` hands out as views. It records the
    layout and (weakly) the views of its current issue, so ``Layout.flat`` recognises a tree of
    exactly those views without copying. Never handed out itself: views go through ``issue``,
    a plain ndarray view of it, which is the ``.base`` of every leaf."""

    layout: Layout | None
    issue: weakref.ref | None
    views: tuple


def _new_buffer(size: int, dtype: np.dtype) -> np.ndarray:
    """A new, uninitialised flat buffer: a plain view of a fresh ``_Buffer`` owner."""
    owner = np.ndarray.__new__(_Buffer, (size,), dtype)
    owner.layout, owner.issue, owner.views = None, None, ()
    return owner.view(np.ndarray)


def _treedef(node: Any) -> Any:
    """A hashable description of ``node``'s structure (not its leaves)."""
    if isinstance(node, dict):
        keys = _keys(node)
        return ("dict", keys, tuple(_treedef(node[k]) for k in keys))
    if _is_namedtuple(node):
        return (type(node), tuple(_treedef(c) for c in node))
    if isinstance(node, tuple | list):
        return (type(node).__name__, tuple(_treedef(c) for c in node))
    if isinstance(node, Layout):
        return ("layout", node)
    return None


def _leaf_getter(node: Any) -> Callable[[Any, list], bool]:
    """A function appending ``tree``'s leaves to a list when ``tree`` has ``node``'s structure
    (returning True), or returning False at the first difference. Built once per layout;
    leaves are not inspected (``Layout.flat`` checks their shapes)."""
    if isinstance(node, dict):
        keys = _keys(node)
        keyset = set(keys)
        parts = tuple((key, _leaf_getter(node[key])) for key in keys)
        if all(part is _leaf for _, part in parts):  # a dict of arrays, as an MLP layer

            def get_leaves(tree: Any, out: list) -> bool:
                if not isinstance(tree, dict) or tree.keys() != keyset:
                    return False
                for key in keys:
                    out.append(tree[key])
                return True

            return get_leaves

        def get_dict(tree: Any, out: list) -> bool:
            if not isinstance(tree, dict) or tree.keys() != keyset:
                return False
            for key, part in parts:
                if not part(tree[key], out):
                    return False
            return True

        return get_dict
    split = _children(node)
    if split is None:
        return _leaf
    if isinstance(node, Layout):
        return lambda tree, out: tree == node
    children, _ = split
    kind, parts_list = type(node), tuple(_leaf_getter(child) for child in children)

    def get_sequence(tree: Any, out: list) -> bool:
        if type(tree) is not kind or len(tree) != len(parts_list):
            return False
        for part, child in zip(parts_list, tree, strict=True):
            if not part(child, out):
                return False
        return True

    return get_sequence


def _leaf(tree: Any, out: list) -> bool:
    out.append(tree)
    return True


def _nested_spec(tree: PyTree) -> tuple | None:
    """For a dict of non-empty dicts of arrays (an MLP's params): ``((key, ((inner key, leaf
    index), ...), inner key set), ...)`` in leaf order, for the one-loop fast paths of
    ``unpack`` and ``view_tree``; None for any other structure."""
    if not isinstance(tree, dict) or not tree:
        return None
    spec, index = [], 0
    for key in _keys(tree):
        node = tree[key]
        if not isinstance(node, dict) or not node or any(map(_is_container, node.values())):
            return None
        inner = tuple((k, index + i) for i, k in enumerate(_keys(node)))
        spec.append((key, inner, set(node)))
        index += len(inner)
    return tuple(spec)


def _builder(node: Any) -> Callable[[Any], Any]:
    """A function rebuilding ``node``'s structure from an iterator over its new leaves."""
    if isinstance(node, dict):
        keys = _keys(node)
        parts = [_builder(node[key]) for key in keys]
        if all(part is next for part in parts):  # a dict of arrays, as an MLP layer
            return lambda leaves: {key: next(leaves) for key in keys}
        return lambda leaves: {key: part(leaves) for key, part in zip(keys, parts, strict=True)}
    split = _children(node)
    if split is None:
        return next
    if isinstance(node, Layout):
        return lambda leaves: node
    children, rebuild = split
    parts = [_builder(child) for child in children]
    return lambda leaves: rebuild([part(leaves) for part in parts])


class Layout:
    """The structure of a pytree and where each of its array leaves lives in one flat buffer.

    ``unpack(buffer)`` gives a tree whose leaves are views of ``buffer``; ``flat(tree)`` gives
    that buffer back without copying when ``tree`` is such a view tree (else it checks the
    structure and shapes, naming the first difference, and concatenates once). Optimizers use
    it to apply each equation in one NumPy call over every parameter while callers keep seeing
    ordinary pytrees. Layouts are immutable; two are equal when structure, shapes and dtype are.
    """

    def __init__(self, tree: PyTree, dtype=None):
        with_paths = tree_leaves_with_path(tree)
        self.paths = tuple(path for path, _ in with_paths)
        leaves = [leaf for _, leaf in with_paths]
        self.shapes = tuple(np.shape(leaf) for leaf in leaves)
        self.sizes = tuple(int(np.prod(shape)) for shape in self.shapes)
        self.offsets = tuple(int(o) for o in np.cumsum((0, *self.sizes))[:-1])
        self.size = sum(self.sizes)
        if dtype is None:
            dtype = np.result_type(*leaves) if leaves else np.float64
        self.dtype = np.dtype(dtype)
        # a tree of this structure with empty leaves of the right shapes (for messages, copies)
        self.template = tree_map(lambda leaf: np.empty(np.shape(leaf), self.dtype), tree)
        self._key = (_treedef(tree), self.shapes, self.dtype.str)
        self._hash = hash(self._key)
        self._build = _builder(tree)
        self._slices = tuple(
            (offset, offset + size, shape, len(shape) == 1)
            for offset, size, shape in zip(self.offsets, self.sizes, self.shapes, strict=True)
        )
        self._get = _leaf_getter(tree)
        self._nested = _nested_spec(tree)

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Layout) and self._hash == other._hash and self._key == other._key
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Layout({len(self.shapes)} leaves, {self.size} {self.dtype} values)"

    def __reduce__(self):  # a copy or pickle is rebuilt from a template of its structure
        return (Layout, (self.template, self.dtype))

    def empty(self) -> np.ndarray:
        """A new, uninitialised flat buffer of this layout (for ``unpack``)."""
        return _new_buffer(self.size, self.dtype)

    def zeros(self) -> PyTree:
        flat = self.empty()
        flat.fill(0)
        return self.unpack(flat)

    def unpack(self, flat: np.ndarray) -> PyTree:
        """A tree of this layout whose leaves are views of the 1-D ``flat``. A buffer from
        ``empty()`` is used as it is (issuing it again retires its earlier views: see
        ``DonatedError``); any other array is copied into one first."""
        return self.unpack_views(flat)[0]

    def unpack_views(self, flat: np.ndarray) -> tuple[PyTree, list[np.ndarray]]:
        """``unpack(flat)`` and its leaves, in order."""
        owner = getattr(flat, "base", None)
        if type(owner) is not _Buffer or flat.shape != (self.size,) or flat.dtype != self.dtype:
            if np.shape(flat) != (self.size,):
                raise ValueError(
                    f"a flat buffer of {self.size} values expected, got {np.shape(flat)}"
                )
            copy = self.empty()
            copy[...] = flat
            flat, owner = copy, copy.base
        if owner.issue is not None:  # issued before: a new issue, so the old views go stale
            flat = owner.view(np.ndarray)
        views = [
            flat[start:stop] if flat_leaf else flat[start:stop].reshape(shape)
            for start, stop, shape, flat_leaf in self._slices
        ]
        owner.layout, owner.issue = self, weakref.ref(flat)
        owner.views = tuple(map(weakref.ref, views))
        if self._nested is not None:  # a dict of dicts of arrays (an MLP's params): one step
            return {key: {k: views[i] for k, i in inner} for key, inner, _ in self._nested}, views
        return self._build(iter(views)), views

    def leaves(self, tree: PyTree) -> list | None:
        """``tree``'s leaves if it has this structure (shapes unchecked), else None."""
        out: list = []
        return out if self._get(tree, out) else None

    def flat(self, tree: PyTree, name: str = "tree", reference: str = "its layout") -> np.ndarray:
        """The flat buffer behind ``tree``: no copy if ``tree`` is a view tree of this layout,
        else its leaves concatenated (checked first). Never write to the result.

        Raises ``ValueError`` naming ``name``, ``reference`` and the first place where the
        structure or a shape differs, and ``DonatedError`` for a tree that was donated."""
        found = view_tree(tree, name)
        if found is not None and (found[0] is self or found[0] == self):
            return found[2]
        return self._concatenate(tree, name, reference)

    def _concatenate(self, tree: PyTree, name: str, reference: str) -> np.ndarray:
        """``tree``'s leaves in one new buffer, after checking structure and shapes."""
        leaves = self.leaves(tree)
        problem = None if leaves is not None else difference(self.template, tree)
        if problem is None and any(map(_is_container, leaves)):
            problem = difference(self.template, tree)
        if problem is not None:
            raise ValueError(f"{name} {_differ(name)} from {reference} {problem}")
        for path, leaf, shape in zip(self.paths, leaves, self.shapes, strict=True):
            if np.shape(leaf) != shape:
                raise ValueError(
                    f"{name} {_differ(name)} from {reference} at {path}: shape "
                    f"{np.shape(leaf)} where it should have shape {shape}"
                )
        out = self.empty()
        if leaves:
            np.concatenate([np.ravel(leaf) for leaf in leaves], out=out, casting="unsafe")
        return out


def _differ(name: str) -> str:
    return "differ" if name.endswith("s") else "differs"


def _is_container(node: Any) -> bool:
    return isinstance(node, dict | list | tuple | Layout)


def _any_leaf(tree: PyTree) -> Any:
    """Some leaf of ``tree`` (None if it has none), found without walking all of it."""
    node = tree
    while True:
        if isinstance(node, dict):
            if not node:
                return None
            node = next(iter(node.values()))
        elif isinstance(node, tuple | list):
            node = next((child for child in node if not isinstance(child, Layout)), None)
            if node is None:
                return None
        else:
            return node


def view_tree(tree: PyTree, name: str = "tree") -> tuple[Layout, list, np.ndarray] | None:
    """``(layout, leaves, buffer)`` if ``tree`` is exactly the current view tree of one of
    fnn's flat buffers, else None: recognised from the buffer its leaves are views of (each
    leaf must be the very view that was issued, in its place). ``DonatedError`` if ``tree``
    holds views of an earlier issue of a buffer that a donating call has reused since."""
    issue = getattr(_any_leaf(tree), "base", None)
    owner = getattr(issue, "base", None)
    if type(owner) is not _Buffer or owner.issue is None:
        return None
    if issue is not owner.issue():
        raise DonatedError(
            f"{name} was donated to a call that reused its memory (donate=True); continue "
            "from the tree that call returned"
        )
    layout, views = owner.layout, owner.views
    leaves: list = []
    if layout._nested is not None:  # an MLP's params: structure and identity in one loop
        if not isinstance(tree, dict) or len(tree) != len(layout._nested):
            return None
        for key, inner, keyset in layout._nested:
            node = tree.get(key)
            if not isinstance(node, dict) or node.keys() != keyset:
                return None
            for k, i in inner:
                leaf = node[k]
                if views[i]() is not leaf:
                    return None
                leaves.append(leaf)
        return layout, leaves, issue
    if not layout._get(tree, leaves) or len(leaves) != len(views):
        return None
    for view, leaf in zip(views, leaves, strict=True):
        if view() is not leaf:
            return None
    return layout, leaves, issue


def layout_of(tree: PyTree, name: str = "tree") -> Layout:
    """The layout ``tree`` was unpacked with, or a new one describing it."""
    found = view_tree(tree, name)
    return Layout(tree) if found is None else found[0]


def flatten(tree: PyTree, name: str = "tree") -> tuple[np.ndarray, Layout]:
    """``(buffer, layout)`` with ``layout.unpack(buffer)`` equal to ``tree``: the buffer behind
    a view tree (no copy, so never write to it), else a new concatenation."""
    found = view_tree(tree, name)
    if found is not None:
        return found[2], found[0]
    layout = Layout(tree)
    return layout._concatenate(tree, name, "its layout"), layout


def apply_updates(params: Params, updates: Params, *, donate: bool = False) -> Params:
    """``params + updates`` leaf-wise, keeping each parameter's dtype (as ``optax.apply_updates``).

    Updates are already signed: an optimizer returns ``-learning_rate * direction``. Neither
    argument is modified, and the result is a new view tree of one flat buffer. With
    ``donate=True`` the caller gives ``params`` up: the sum is written into its buffer, and
    ``params`` must not be used again (fnn raises ``DonatedError``).
    """
    found = view_tree(params, "params")
    if found is None and len({np.result_type(leaf) for leaf in tree_leaves(params)}) > 1:
        return tree_map(_add_keeping_dtype, params, updates)  # mixed precision: per leaf
    if found is None:
        layout = Layout(params)
        flat_params = layout._concatenate(params, "params", "its layout")
    else:
        layout, _, flat_params = found
    found = view_tree(updates, "updates")
    if found is not None and (found[0] is layout or found[0]._key[:2] == layout._key[:2]):
        flat_updates = found[2]
    else:
        problem = difference(layout.template, updates, shapes=True)
        if problem is not None:
            raise ValueError(f"updates differ from params {problem}")
        flat_updates = Layout(updates)._concatenate(updates, "updates", "its layout")
    out = flat_params if donate else layout.empty()
    np.add(flat_params, flat_updates, out=out, casting="unsafe")
    return layout.unpack(out)


def _add_keeping_dtype(param: np.ndarray, update: np.ndarray) -> np.ndarray:
    if np.shape(param) != np.shape(update):
        raise ValueError(
            f"update of shape {np.shape(update)} does not match parameter of shape "
            f"{np.shape(param)}"
        )
    return np.add(param, update, dtype=np.asarray(param).dtype, casting="unsafe")
