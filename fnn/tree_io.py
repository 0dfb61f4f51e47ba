"""Any pytree (params, an optimizer state, both together) to named arrays and back, and to an
``.npz`` file and back, without pickle: ``save_tree(path, tree)``, then
``load_tree(path, template)`` with a tree of the same structure (``opt.init(params)`` for a
state) gives the saved values in the template's structure, dtypes and scalar types."""

from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from fnn.tree import PyTree, tree_leaves_with_path, tree_map


def to_arrays(tree: PyTree) -> dict[str, np.ndarray]:
    """``{path: array}`` for every leaf, the paths of ``tree_leaves_with_path`` (``"layer_0/w"``,
    ``"count"`` for a NamedTuple's field). Scalars become 0-d arrays; static data (a state's
    ``Layout``) is not a leaf and is not included: the template gives it back."""
    arrays = {}
    for path, leaf in tree_leaves_with_path(tree):
        array = np.asarray(leaf)
        if array.dtype.kind not in "biufc":
            raise ValueError(f"{path or 'the tree'} is not numeric ({array.dtype}): cannot save it")
        arrays[path] = array
    return arrays


def from_arrays(template: PyTree, arrays: dict[str, Any]) -> PyTree:
    """A new tree with ``template``'s structure whose leaves are ``arrays[path]`` (copied), each
    in the template leaf's dtype (and Python type for a scalar such as a step count).
    ``ValueError`` names a missing path, a shape that differs, or a path the template lacks."""
    expected = tree_leaves_with_path(template)
    unknown = sorted(set(arrays) - {path for path, _ in expected})
    if unknown:
        raise ValueError(f"the arrays hold {', '.join(unknown)}, which the template has not")
    leaves = []
    for path, leaf in expected:
        if path not in arrays:
            raise ValueError(f"the arrays have no {path or 'value'} (the template has one)")
        value = np.asarray(arrays[path])
        if value.shape != np.shape(leaf):
            raise ValueError(
                f"{path} has shape {value.shape} where the template has {np.shape(leaf)}"
            )
        if isinstance(leaf, bool | int | float | np.generic):  # a scalar, of its own type
            if isinstance(leaf, int | np.integer) and value != np.round(value):
                raise ValueError(f"{path} is {value} where the template has an integer")
            leaves.append(type(leaf)(value))
        else:
            leaves.append(np.array(value, dtype=np.asarray(leaf).dtype))
    values = iter(leaves)  # in the order tree_map visits the leaves
    return tree_map(lambda _: next(values), template)


def save_tree(path: str | os.PathLike, tree: PyTree) -> None:
    """Write ``to_arrays(tree)`` to the ``.npz`` file ``path`` (no pickle), as ``np.savez`` does
    (one ``PATH.npy`` member per leaf, any path allowed), through a temporary file that replaces
    ``path`` only once complete: a failed save leaves an earlier file as it was."""
    arrays = to_arrays(tree)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, staging = tempfile.mkstemp(dir=folder, prefix=".saving-", suffix=".npz")
    try:
        with os.fdopen(descriptor, "wb") as file, zipfile.ZipFile(file, "w") as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        os.replace(staging, path)
    except BaseException:
        os.unlink(staging)
        raise


def load_tree(path: str | os.PathLike, template: PyTree) -> PyTree:
    """The tree ``save_tree`` wrote to ``path``, in ``template``'s structure (see
    ``from_arrays``); read with ``allow_pickle=False``."""
    with np.load(path, allow_pickle=False) as data:
        return from_arrays(template, {name: data[name] for name in data.files})
