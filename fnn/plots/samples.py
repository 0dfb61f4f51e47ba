"""Grids of images: one sample of each class, labelled, as a figure or as one uint8 mosaic,
and the tiles they are cut into (any image layout scaled to uint8)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fnn.plots.common import _save

GRID_COLUMNS = 5  # sample grids are ceil(C / 5) rows of 5
BORDER = 2  # pixels around each tile of sample_grid_array
BORDER_VALUE = 255


def first_of_each_class(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Index of the first sample of each class ``0 .. num_classes - 1`` in ``labels``, in class
    order; ``ValueError`` naming the classes that do not occur."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {labels.shape}")
    classes, first = np.unique(labels, return_index=True)
    indices = np.full(num_classes, -1, dtype=np.int64)
    wanted = (classes >= 0) & (classes < num_classes)
    indices[classes[wanted].astype(np.int64)] = first[wanted]
    missing = np.flatnonzero(indices < 0)
    if missing.size:
        raise ValueError(f"no sample of class {', '.join(map(str, missing))} in labels")
    return indices


def sample_grid_array(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One uint8 mosaic of the first sample of each class: ``ceil(C / 5)`` rows of up to 5
    tiles in class order, each tile framed by a ``BORDER``-pixel white border (RGB images give
    an RGB mosaic)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    tiles = _tiles(images, first_of_each_class(labels, num_classes))
    rows, cols = _grid_shape(num_classes)
    height, width = tiles.shape[1:3]
    mosaic = np.full(
        (rows * (height + BORDER) + BORDER, cols * (width + BORDER) + BORDER, *tiles.shape[3:]),
        BORDER_VALUE,
        dtype=np.uint8,
    )
    for index, tile in enumerate(tiles):
        top = BORDER + (index // cols) * (height + BORDER)
        left = BORDER + (index % cols) * (width + BORDER)
        mosaic[top : top + height, left : left + width] = tile
    return mosaic


def sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Write the first sample of each class, labelled with its class name, as a PNG grid of
    ``ceil(C / 5)`` rows at ``path`` and return it. ``images`` are uint8 ``(N, 28, 28)``,
    ``(N, 32, 32, 3)`` or float ``(N, 784)`` (see ``_tiles`` for the scaling)."""
    num_classes = len(class_names)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    tiles = _tiles(images, first_of_each_class(labels, num_classes))
    rows, cols = _grid_shape(num_classes)
    fig = Figure(figsize=(2.0 * cols, 2.2 * rows + (0.4 if title else 0.0)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for index, (ax, tile) in enumerate(zip(axes[: len(tiles)], tiles, strict=True)):
        ax.imshow(tile, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{index}: {class_names[index]}", fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    return _save(fig, path)


def _grid_shape(num_classes: int) -> tuple[int, int]:
    if num_classes < 1:
        raise ValueError(f"need at least one class, got {num_classes}")
    return math.ceil(num_classes / GRID_COLUMNS), min(num_classes, GRID_COLUMNS)


def _tiles(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``images[indices]`` as uint8 ``(k, side, side)`` tiles (``(k, H, W, 3)`` for colour
    images). Flat rows ``(N, side²)`` are
    reshaped; integers are taken as 0..255, floats in [0, 1] are scaled by 255 and any other
    floats min-max scaled to 0..255 over the picked tiles."""
    images = np.asarray(images)
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"flat images need a square number of pixels, got {images.shape[1]}")
        images = images.reshape(len(images), side, side)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(
            f"images must be (N, H, W), (N, H, W, 3) or (N, H*W), got shape {images.shape}"
        )
    picked = images[indices]
    if picked.dtype.kind in "iub":
        return np.clip(picked, 0, 255).astype(np.uint8)
    picked = picked.astype(np.float64)
    low, high = picked.min(), picked.max()
    if low < 0 or high > 1:
        picked = (picked - low) / (high - low if high > low else 1.0)
    return np.round(picked * 255).astype(np.uint8)
