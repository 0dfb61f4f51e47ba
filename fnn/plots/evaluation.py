"""Figures of a trained model on its test set: the annotated confusion matrix, and the test
images of its most common mistakes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fnn.metrics import most_confused, precision_recall
from fnn.plots.common import _save
from fnn.plots.samples import _tiles

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


def misclassified_grid(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    *,
    pairs: int = 5,
    per_pair: int = 6,
    title: str = "Misclassified test images",
) -> Path:
    """For each of the ``pairs`` most-confused (true → predicted) pairs, the first
    ``per_pair`` test images of that mistake, one row a pair, labelled with its count."""
    from fnn.metrics import confusion_matrix

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    confusion = confusion_matrix(labels, predictions, len(class_names))
    chosen = most_confused(confusion, pairs)
    rows = max(len(chosen), 1)
    fig = Figure(figsize=(1.45 * per_pair + 2.6, 1.6 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, per_pair, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for row, (true, predicted, count) in enumerate(chosen):
        wrong = np.flatnonzero((labels == true) & (predictions == predicted))[:per_pair]
        tiles = _tiles(images, wrong)
        for ax, tile in zip(axes[row], tiles, strict=False):
            ax.imshow(tile, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[row, 0].text(
            -0.15, 0.5, f"{class_names[true]}\n→ {class_names[predicted]}\n({count})",
            transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=9,
        )  # fmt: skip
    if not chosen:
        axes[0, 0].text(0, 0.5, "no mistakes", fontsize=11)
    fig.suptitle(title, fontsize=13)
    return _save(fig, path)
