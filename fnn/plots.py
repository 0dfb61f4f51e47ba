"""Figures for reports: an annotated confusion matrix, a grid of one sample per class, and
the views of a hyperparameter sweep (parallel coordinates, metric by run, importances, curves).

Drawn with matplotlib's object-oriented API on the non-interactive Agg canvas, so importing
or calling this module never touches pyplot's global state or the user's chosen backend.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator

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


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    fig.clear()  # free the artists now; the figure was never registered with pyplot
    return path


# --- hyperparameter sweeps ------------------------------------------------------------------

LOG_RATIO = 20.0  # see wants_log_scale
LOG_CROWDING = 0.25
MAX_VALUE_TICKS = 6  # numeric axes with this many distinct values or fewer tick every value
MIN_TICK_GAP = 0.05  # ticks closer than this (in axis units 0..1) are thinned out
MISSING_POSITION = -0.12  # where a missing value sits, below the axis, at a "—" tick
MISSING_LABEL = "—"
MAX_LABEL_CHARS = 14  # longer category names are cut short with "…"
ROTATE_NAMES_OVER = 14  # axis names longer than this many characters are drawn slanted
FAILED_COLOUR = "#a0a0a0"
GOALS = ("maximize", "minimize")


class ParallelAxis(NamedTuple):
    """One vertical axis of a parallel-coordinates plot: ``positions`` of the trials in 0..1
    (``MISSING_POSITION`` where the value is missing) and the ticks to label it with."""

    kind: str  # "linear", "log" or "categorical"
    positions: np.ndarray
    ticks: np.ndarray
    labels: list[str]


def parallel_axis(values: Sequence) -> ParallelAxis:
    """Map one column of trial values onto a 0..1 axis.

    Missing values (``None``, NaN, ±inf) go to ``MISSING_POSITION``. If every present value is a
    real number the axis is numeric: logarithmic when ``wants_log_scale``, linear otherwise.
    Anything else is categorical: the distinct values, sorted as strings, evenly spaced from
    0 to 1 (a lone one at 0.5).
    """
    present = [value for value in values if not _is_missing(value)]
    if present and all(_is_number(value) for value in present):
        axis = _numeric_axis(values, np.array(present, dtype=np.float64))
    else:
        axis = _categorical_axis(values, present)
    if len(present) == len(values):
        return axis
    return axis._replace(
        ticks=np.append(axis.ticks, MISSING_POSITION), labels=[*axis.labels, MISSING_LABEL]
    )


def _is_missing(value) -> bool:
    """``None``, NaN or ±inf (a diverged run's loss): nothing a 0..1 axis can place."""
    return value is None or (isinstance(value, float | np.floating) and not math.isfinite(value))


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def wants_log_scale(values: np.ndarray) -> bool:
    """Whether positive ``values`` belong on a log axis: they span a factor of ``LOG_RATIO``
    or more and a linear axis would crowd them at its bottom (their geometric mean lies in
    its lowest ``LOG_CROWDING`` fraction), as log-uniformly sampled learning rates do.

    The crowding test keeps e.g. dropout drawn uniformly from 0.001..0.5 linear; the ratio
    is lower than W&B's customary 100 because 30 draws from 1e-4..1e-2 rarely span it.
    """
    low, high = values.min(), values.max()
    if low <= 0 or high / low < LOG_RATIO:
        return False
    geometric_mean = np.exp(np.log(values).mean())
    return (geometric_mean - low) / (high - low) < LOG_CROWDING


def _numeric_axis(values: Sequence, present: np.ndarray) -> ParallelAxis:
    low, high = present.min(), present.max()
    kind = "log" if wants_log_scale(present) else "linear"
    forward = np.log10 if kind == "log" else (lambda x: x)
    lo, span = forward(low), forward(high) - forward(low)

    def to_axis(x):
        return (forward(x) - lo) / span if span > 0 else np.full_like(x, 0.5)

    raw = np.array([np.nan if _is_missing(v) else v for v in values], dtype=np.float64)
    positions = np.where(np.isnan(raw), MISSING_POSITION, to_axis(np.nan_to_num(raw, nan=low)))
    distinct = np.unique(present)
    if len(distinct) <= MAX_VALUE_TICKS:
        tick_values = distinct
    elif kind == "log":
        tick_values = _in_range(LogLocator(subs=(1.0,)).tick_values(low, high), low, high)
        if len(tick_values) < 3:
            tick_values = _in_range(
                LogLocator(subs=(1.0, 2.0, 5.0)).tick_values(low, high), low, high
            )
    else:
        tick_values = _in_range(MaxNLocator(nbins=5).tick_values(low, high), low, high)
    ticks, keep = _thin(to_axis(tick_values))
    return ParallelAxis(kind, positions, ticks, [f"{v:.4g}" for v in tick_values[keep]])


def _in_range(ticks: np.ndarray, low: float, high: float) -> np.ndarray:
    tolerance = 1e-9 * max(abs(low), abs(high), 1e-300)
    return ticks[(ticks >= low - tolerance) & (ticks <= high + tolerance)]


def _thin(ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ticks closer than ``MIN_TICK_GAP`` to the last kept one (they would overlap)."""
    keep = np.zeros(len(ticks), dtype=bool)
    last = -np.inf
    for index in np.argsort(ticks):
        if ticks[index] - last >= MIN_TICK_GAP:
            keep[index], last = True, ticks[index]
    return ticks[keep], keep


def _categorical_axis(values: Sequence, present: list) -> ParallelAxis:
    categories = sorted({str(value) for value in present})
    spacing = 1.0 / (len(categories) - 1) if len(categories) > 1 else 0.0
    offset = 0.0 if len(categories) > 1 else 0.5
    where = {name: offset + index * spacing for index, name in enumerate(categories)}
    positions = np.array(
        [MISSING_POSITION if _is_missing(v) else where[str(v)] for v in values], dtype=np.float64
    )
    ticks = np.array([where[name] for name in categories], dtype=np.float64)
    return ParallelAxis("categorical", positions, ticks, [_shorten(name) for name in categories])


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _check_goal(goal: str) -> None:
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")


def _finite(value) -> bool:
    return not _is_missing(value) and _is_number(value)


def parallel_coordinates(
    trials: list[dict],
    params: list[str],
    metric: str,
    path: str | Path,
    *,
    title: str | None = None,
    goal: str | None = None,
) -> Path:
    """Write a W&B-style parallel-coordinates plot of a sweep as a PNG at ``path``.

    One vertical axis per name in ``params`` and a last one for ``metric`` (see
    ``parallel_axis`` for the scales); each trial is a polyline coloured by its metric, the
    best drawn on top and the very best thicker. Trials whose metric is missing or NaN (failed,
    pruned) are thin grey lines. ``goal`` is "maximize" or "minimize"; by default it is
    "minimize" when the metric's name mentions loss or error.
    """
    if goal is None:
        goal = (
            "minimize" if any(word in metric.lower() for word in ("loss", "error")) else "maximize"
        )
    _check_goal(goal)
    names = [*params, metric]
    axes_data = [parallel_axis([trial.get(name) for trial in trials]) for name in names]
    scores = np.array(
        [trial.get(metric) if _finite(trial.get(metric)) else np.nan for trial in trials],
        dtype=np.float64,
    )
    finished = np.flatnonzero(~np.isnan(scores))
    # ascending for maximize, so the best come last and are drawn on top
    order = finished[np.argsort(scores[finished] if goal == "maximize" else -scores[finished])]

    height = 5.6 + 0.06 * max(0, max(len(name) for name in names) - ROTATE_NAMES_OVER)
    fig = Figure(figsize=(max(7.0, 1.55 * len(names) + 2.8), height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    columns = np.arange(len(names))
    lines = np.stack([axis.positions for axis in axes_data], axis=1) if trials else None
    failed = np.flatnonzero(np.isnan(scores))
    if len(failed):
        segments = [np.column_stack([columns, lines[i]]) for i in failed]
        ax.add_collection(LineCollection(segments, colors=FAILED_COLOUR, linewidths=0.8, alpha=0.6))
    if len(order):
        norm = _metric_norm(scores[order], axes_data[-1].kind)
        cmap = "viridis" if goal == "maximize" else "viridis_r"
        mappable = ScalarMappable(norm=norm, cmap=cmap)
        widths = np.full(len(order), 1.5)
        widths[-1] = 3.0
        segments = [np.column_stack([columns, lines[i]]) for i in order]
        ax.add_collection(
            LineCollection(
                segments, colors=mappable.to_rgba(scores[order]), linewidths=widths, alpha=0.9
            )
        )
        colorbar = fig.colorbar(mappable, ax=ax, pad=0.02, fraction=0.04, aspect=30)
        colorbar.set_label(metric)
    _draw_parallel_axes(ax, names, axes_data)

    best = (
        f"best {metric} {scores[order[-1]]:.4g} (thick line)" if len(order) else "no finished trial"
    )
    failed_note = f" · {len(failed)} failed/pruned (grey)" if len(failed) else ""
    ax.set_title(f"{_count(len(trials), 'trial')} · {best}{failed_note}", fontsize=10)
    fig.suptitle(title or f"Sweep: {metric} by hyperparameter", fontsize=13)
    return _save(fig, path)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _metric_norm(scores: np.ndarray, kind: str) -> Normalize:
    low, high = float(scores.min()), float(scores.max())
    if low == high:  # a single value: widen so the colour scale is not degenerate
        pad = abs(low) * 0.01 or 0.01
        low, high = low - pad, high + pad
        kind = "linear"
    return LogNorm(low, high) if kind == "log" else Normalize(low, high)


def _draw_parallel_axes(ax, names: list[str], axes_data: list[ParallelAxis]) -> None:
    """Vertical axis lines with their ticks and labels; parameter names along the bottom."""
    tick_length = 0.03
    for column, axis in enumerate(axes_data):
        ax.plot([column, column], [0, 1], color="#333333", linewidth=1.2, zorder=3)
        for tick, label in zip(axis.ticks, axis.labels, strict=True):
            ax.plot([column - tick_length, column], [tick, tick], color="#333333", lw=1, zorder=3)
            ax.text(
                column - 1.6 * tick_length,
                tick,
                label,
                ha="right",
                va="center",
                fontsize=8,
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
        if axis.kind == "log":
            ax.text(column + tick_length, 1.02, "log", fontsize=7, color="#666666", va="bottom")
    has_missing = any(MISSING_LABEL in axis.labels for axis in axes_data)
    ax.set_ylim(MISSING_POSITION - 0.06 if has_missing else -0.04, 1.06)
    ax.set_xlim(-0.5, len(names) - 1 + 0.15)
    long_names = max(len(name) for name in names) > ROTATE_NAMES_OVER
    ax.set_xticks(
        np.arange(len(names)),
        labels=names,
        rotation=25 if long_names else 0,
        ha="right" if long_names else "center",
        rotation_mode="anchor",
    )
    ax.get_xticklabels()[-1].set_fontweight("bold")
    ax.tick_params(axis="x", length=0, labelsize=10, pad=6)
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def metric_by_run(
    values: list[float | None],
    path: str | Path,
    *,
    metric: str = "val_accuracy",
    goal: str = "maximize",
    title: str | None = None,
) -> Path:
    """Write ``metric`` of each run in run order (dots) with the running best (a step line,
    max or min per ``goal``) as a PNG at ``path``; missing or NaN values are skipped."""
    _check_goal(goal)
    runs = np.array([i + 1 for i, v in enumerate(values) if _finite(v)], dtype=np.int64)
    scores = np.array([v for v in values if _finite(v)], dtype=np.float64)
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    skipped = len(values) - len(scores)
    if len(scores):
        running = (
            np.maximum.accumulate(scores) if goal == "maximize" else np.minimum.accumulate(scores)
        )
        ax.scatter(runs, scores, s=28, color="#1f77b4", alpha=0.8, label="run", zorder=3)
        ax.step(
            np.append(runs, len(values)),
            np.append(running, running[-1]),
            where="post",
            color="#d62728",
            linewidth=2,
            label="best so far",
        )
        best = int(np.argmax(scores) if goal == "maximize" else np.argmin(scores))
        ax.scatter(runs[best], scores[best], s=160, marker="*", color="#d62728", zorder=4)
        ax.annotate(
            f"{scores[best]:.4g} (run {runs[best]})",
            (runs[best], scores[best]),
            xytext=(0, 10 if goal == "maximize" else -14),
            textcoords="offset points",
            ha="center",
            va="bottom" if goal == "maximize" else "top",
            fontsize=9,
        )
        ax.margins(y=0.12)
        ax.legend(loc="best", fontsize=9)
    else:
        ax.text(0.5, 0.5, "no finished run", transform=ax.transAxes, ha="center", color="gray")
    ax.set_xlim(0.5, max(len(values), 1) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("run")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    note = f" · {skipped} without a value" if skipped else ""
    ax.set_title(f"{_count(len(values), 'run')}, goal: {goal}{note}", fontsize=10)
    fig.suptitle(title or f"{metric} by run", fontsize=13)
    return _save(fig, path)


def importance_bar(
    importances: dict[str, float],
    path: str | Path,
    *,
    title: str = "Hyperparameter importance",
) -> Path:
    """Write a horizontal bar chart of ``importances`` (largest on top, each bar annotated
    with its value) as a PNG at ``path``; missing or NaN importances are left out."""
    ranked = sorted(
        ((name, float(value)) for name, value in importances.items() if _finite(value)),
        key=lambda item: item[1],
    )  # ascending: barh draws the first at the bottom
    fig = Figure(figsize=(7.0, 1.2 + 0.45 * max(len(ranked), 2)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if ranked:
        names, scores = zip(*ranked, strict=True)
        bars = ax.barh(np.arange(len(ranked)), scores, color="#4c72b0", height=0.65)
        ax.bar_label(bars, labels=[f"{s:.3g}" for s in scores], padding=4, fontsize=9)
        ax.set_yticks(np.arange(len(ranked)), labels=names)
        low, high = min(0.0, min(scores)), max(0.0, max(scores))
        span = (high - low) or 1.0
        ax.set_xlim(low - (0.15 * span if low < 0 else 0), high + 0.15 * span)
    else:
        ax.text(0.5, 0.5, "no importances", transform=ax.transAxes, ha="center", color="gray")
        ax.set_yticks([])
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel("importance")
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=13)
    return _save(fig, path)


def curves(
    histories: dict[str, list[dict]],
    path: str | Path,
    *,
    x: str = "epoch",
    metrics: Sequence[str] = ("val_accuracy", "val_loss"),
    title: str | None = None,
) -> Path:
    """Write one panel per name in ``metrics``, one line per run of ``histories`` (labelled by
    its key), against each record's ``x`` as a PNG at ``path``; a legend shared by the panels
    sits to the right. Records without the metric (or ``x``) are skipped."""
    if not list(metrics):
        raise ValueError("curves needs at least one metric to plot")
    return curve_panels(
        {run: {"records": records} for run, records in histories.items()},
        path,
        panels=[("records", x, metric) for metric in metrics],
        title=title,
        columns=len(metrics),
    )


# --- speed ------------------------------------------------------------------------------------


def bench_figure(result: dict, path: str | Path) -> Path:
    """Seconds per epoch and samples per second against batch size (log x) from
    ``fnn.bench.run``; PyTorch's eager loop beside fnn when it was measured."""
    rows = result["rows"]
    batch = [row["batch_size"] for row in rows]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot(batch, [r["epoch_seconds"] for r in rows], "o-", label="fnn")
    left.fill_between(
        batch, [r["epoch_min"] for r in rows], [r["epoch_max"] for r in rows], alpha=0.2
    )
    right.plot(batch, [r["samples_per_second"] for r in rows], "o-", label="fnn")
    if all("torch_epoch_seconds" in r for r in rows):
        torch_seconds = [r["torch_epoch_seconds"] for r in rows]
        left.plot(batch, torch_seconds, "s--", label="PyTorch eager")
        right.plot(
            batch, [result["samples"] / s for s in torch_seconds], "s--", label="PyTorch eager"
        )
    for ax, label in ((left, "seconds per epoch"), (right, "samples per second")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(batch, [str(b) for b in batch])
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    sizes = "-".join(map(str, result["sizes"]))
    fig.suptitle(
        f"MLP {sizes} {result['activation']}, {result['optimizer']}, {result['dtype']}, "
        f"{result['samples']} samples per epoch ({result['blas']})"
    )
    return _save(fig, path)


# --- study ------------------------------------------------------------------------------------


def curve_panels(
    histories: dict[str, dict[str, list[dict]]],
    path: str | Path,
    *,
    panels: Sequence[tuple[str, str, str]],
    title: str | None = None,
    log_y: Sequence[str] = (),
    columns: int = 2,
) -> Path:
    """One figure of several panels, ``columns`` to a row, each ``(records, x, metric)``: for
    every run of ``histories`` (``{run: {"epochs": [...], "steps": [...]}}``, as ``fit``
    returns) the records named by the panel, ``metric`` against ``x``; records without either
    are skipped. One colour per run, one legend. Metrics named in ``log_y`` get a log y axis."""
    if not panels:
        raise ValueError("curve_panels needs at least one panel")
    columns = min(len(panels), columns)
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(5.2 * columns + 2.0, 4.0 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    palette = matplotlib.colormaps["tab10" if len(histories) <= 10 else "tab20"]
    handles = {}
    for ax, (records_key, x, metric) in zip(axes, panels, strict=False):
        for index, (run, history) in enumerate(histories.items()):
            points = [
                (record[x], record[metric])
                for record in history.get(records_key, [])
                if _finite(record.get(x)) and _finite(record.get(metric))
            ]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            (line,) = ax.plot(
                xs, ys, color=palette(index % palette.N), linewidth=1.6, label=run,
                marker="o" if len(points) <= 30 else None, markersize=3,
            )  # fmt: skip
            handles.setdefault(run, line)
        if not ax.lines:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="gray")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(f"{metric} by {x}", fontsize=11)
        ax.set_xlabel("update (step)" if x == "step" else x)
        ax.set_ylabel(metric)
        if metric in log_y and ax.lines:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if x in ("epoch", "step", "run"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=9)
    fig.suptitle(title or "Training curves", fontsize=13)
    return _save(fig, path)


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


def distributions(
    groups: dict[str, Sequence[float]],
    path: str | Path,
    *,
    metric: str = "val_accuracy",
    title: str | None = None,
) -> Path:
    """Box plots with every value as a jittered dot, one per group (e.g. the completed trials
    of two sweeps), so both the spread and the best runs are visible."""
    fig = Figure(figsize=(2.2 * len(groups) + 2.5, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    values = [
        np.asarray([v for v in group if _finite(v)], dtype=float) for group in groups.values()
    ]
    ax.boxplot(
        [v if v.size else [np.nan] for v in values], tick_labels=list(groups), widths=0.5,
        showfliers=False,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for index, v in enumerate(values, start=1):
        ax.scatter(index + rng.uniform(-0.12, 0.12, v.size), v, s=14, alpha=0.7, zorder=3)
        if v.size:
            ax.annotate(f"best {v.max():.4f}\nn = {v.size}", (index + 0.28, v.max()), fontsize=8)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or f"{metric} by group", fontsize=13)
    return _save(fig, path)


def overlay(
    steps: np.ndarray,
    ours: np.ndarray,
    theirs: np.ndarray,
    path: str | Path,
    *,
    labels: tuple[str, str] = ("fnn", "PyTorch"),
    title: str = "Training loss per update",
) -> Path:
    """Two loss curves over the same updates, overlaid, and their absolute difference (log y)
    beneath."""
    fig = Figure(figsize=(9, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    top.plot(steps, ours, linewidth=2.4, label=labels[0])
    top.plot(steps, theirs, linewidth=1.0, linestyle="--", label=labels[1])
    top.set_ylabel("minibatch loss")
    top.legend()
    top.grid(alpha=0.3)
    difference = np.abs(np.asarray(ours) - np.asarray(theirs))
    bottom.plot(steps, np.maximum(difference, np.finfo(float).tiny), color="#b22222", linewidth=1)
    bottom.set_yscale("log")
    bottom.set_ylabel(f"|{labels[0]} − {labels[1]}|")
    bottom.set_xlabel("update (step)")
    bottom.grid(alpha=0.3)
    fig.suptitle(f"{title} — max difference {difference.max():.2e}", fontsize=13)
    return _save(fig, path)
