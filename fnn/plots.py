"""Figures for reports: an annotated confusion matrix and a grid of one sample per class.

Drawn with matplotlib's object-oriented API on the non-interactive Agg canvas, so importing
or calling this module never touches pyplot's global state or the user's chosen backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fnn.metrics import most_confused, precision_recall

GRID_COLUMNS = 5  # sample grids are ceil(C / 5) rows of 5
BORDER = 2  # pixels around each tile of sample_grid_array
BORDER_VALUE = 255
CELL_TEXT = {"ha": "center", "va": "center"}


def confusion_figure(
    confusion: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    *,
    title: str = "Confusion matrix",
) -> Path:
    """Write the confusion matrix (rows = true class) as a PNG at ``path`` and return it.

    Each row is normalised by its class's support, so the diagonal is the per-class recall;
    cells show that percentage with the raw count beneath. Recall is repeated on the right
    axis and precision on the top axis; the title gives the overall accuracy and the subtitle
    the three most-confused (true → predicted) pairs.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    num_classes = len(class_names)
    if confusion.shape != (num_classes, num_classes):
        raise ValueError(
            f"confusion of shape {confusion.shape} does not match {num_classes} class names"
        )
    support = confusion.sum(axis=1, keepdims=True)
    rates = np.divide(confusion, support, out=np.zeros(confusion.shape), where=support > 0)
    precision, recall = precision_recall(confusion)
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)

    side = 1.5 + 0.85 * num_classes
    fig = Figure(figsize=(side + 1.5, side + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    _annotate_cells(ax, confusion, rates)

    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, labels=class_names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(length=0)
    right = ax.secondary_yaxis("right")
    recall_labels = [_percent(r, n) for r, n in zip(recall, support[:, 0], strict=True)]
    right.set_yticks(ticks, labels=recall_labels)
    right.set_ylabel("recall")
    right.tick_params(length=0)
    top = ax.secondary_xaxis("top")
    predicted = confusion.sum(axis=0)
    precision_labels = [_percent(p, n) for p, n in zip(precision, predicted, strict=True)]
    top.set_xticks(ticks, labels=precision_labels)
    top.set_xlabel("precision")
    top.tick_params(length=0)
    for spine in (*ax.spines.values(), *right.spines.values(), *top.spines.values()):
        spine.set_visible(False)

    fig.suptitle(f"{title} — accuracy {accuracy:.1%} of {confusion.sum():,}", fontsize=14)
    pairs = [
        f"{class_names[true]} → {class_names[pred]}: {count}"
        for true, pred, count in most_confused(confusion, 3)
    ]
    ax.set_title("most confused: " + ("   ·   ".join(pairs) or "none"), fontsize=10, pad=12)
    return _save(fig, path)


def _annotate_cells(ax, confusion: np.ndarray, rates: np.ndarray) -> None:
    """Percentage of the row in each cell, its count in small text beneath."""
    for (row, col), count in np.ndenumerate(confusion):
        rate = rates[row, col]
        colour = "white" if rate > 0.5 else "#1a1a1a" if count else "#b0b0b0"
        weight = "bold" if row == col else "normal"
        percentage = f"{rate:.1%}" if count else "0"
        ax.text(col, row - 0.1, percentage, **CELL_TEXT, color=colour, fontsize=9, weight=weight)
        if count:
            ax.text(col, row + 0.22, f"{count:,}", **CELL_TEXT, color=colour, fontsize=6.5)


def _percent(value: float, denominator: int) -> str:
    return f"{value:.1%}" if denominator else "–"


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
    tiles in class order, each tile framed by a ``BORDER``-pixel white border."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    tiles = _tiles(images, first_of_each_class(labels, num_classes))
    rows, cols = _grid_shape(num_classes)
    height, width = tiles.shape[1:]
    mosaic = np.full(
        (rows * (height + BORDER) + BORDER, cols * (width + BORDER) + BORDER),
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
    ``ceil(C / 5)`` rows at ``path`` and return it. ``images`` are uint8 ``(N, 28, 28)`` or
    float ``(N, 784)`` (see ``_tiles`` for the scaling)."""
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
    """``images[indices]`` as uint8 ``(k, side, side)`` tiles. Flat rows ``(N, side²)`` are
    reshaped; integers are taken as 0..255, floats in [0, 1] are scaled by 255 and any other
    floats min-max scaled to 0..255 over the picked tiles."""
    images = np.asarray(images)
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"flat images need a square number of pixels, got {images.shape[1]}")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, H*W), got shape {images.shape}")
    picked = images[indices]
    if picked.dtype.kind in "iub":
        return np.clip(picked, 0, 255).astype(np.uint8)
    picked = picked.astype(np.float64)
    low, high = picked.min(), picked.max()
    if low < 0 or high > 1:
        picked = (picked - low) / (high - low if high > low else 1.0)
    return np.round(picked * 255).astype(np.uint8)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    fig.clear()  # free the artists now; the figure was never registered with pyplot
    return path
