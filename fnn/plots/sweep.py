"""Figures of a hyperparameter sweep: a W&B-style parallel-coordinates plot, the metric of
each run with the running best, parameter importances, and the spread of several sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fnn.constraints import GOALS
from fnn.plots.common import _finite, _save
from fnn.plots.scales import MISSING_LABEL, MISSING_POSITION, ParallelAxis, parallel_axis

ROTATE_NAMES_OVER = 14  # axis names longer than this many characters are drawn slanted
FAILED_COLOUR = "#a0a0a0"


def _check_goal(goal: str) -> None:
    if goal not in GOALS.options:
        raise ValueError(f"goal must be one of {', '.join(GOALS.options)}, got {goal!r}")


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
    numbers: list[int] | None = None,
    unit: str = "run",
) -> Path:
    """Write ``metric`` of each run in run order (dots) with the running best (a step line,
    max or min per ``goal``) as a PNG at ``path``; missing or NaN values are skipped. Runs are
    numbered 1, 2, ... or by ``numbers`` (a sweep's trial numbers, with ``unit="trial"``), so
    the figure names a run as the rest of the report does."""
    _check_goal(goal)
    numbers = list(range(1, len(values) + 1)) if numbers is None else list(numbers)
    if len(numbers) != len(values):
        raise ValueError(f"numbers: one per value expected, got {len(numbers)} for {len(values)}")
    runs = np.array([n for n, v in zip(numbers, values, strict=True) if _finite(v)], np.int64)
    scores = np.array([v for v in values if _finite(v)], dtype=np.float64)
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    skipped = len(values) - len(scores)
    if len(scores):
        running = (
            np.maximum.accumulate(scores) if goal == "maximize" else np.minimum.accumulate(scores)
        )
        ax.scatter(runs, scores, s=28, color="#1f77b4", alpha=0.8, label=unit, zorder=3)
        ax.step(
            np.append(runs, max(numbers)),
            np.append(running, running[-1]),
            where="post",
            color="#d62728",
            linewidth=2,
            label="best so far",
        )
        best = int(np.argmax(scores) if goal == "maximize" else np.argmin(scores))
        ax.scatter(runs[best], scores[best], s=160, marker="*", color="#d62728", zorder=4)
        ax.annotate(
            f"{scores[best]:.4g} ({unit} {runs[best]})",
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
        ax.text(0.5, 0.5, f"no finished {unit}", transform=ax.transAxes, ha="center", color="gray")
    ax.set_xlim(min(numbers, default=1) - 0.5, max(numbers, default=1) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(unit)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    note = f" · {skipped} without a value" if skipped else ""
    ax.set_title(f"{_count(len(values), unit)}, goal: {goal}{note}", fontsize=10)
    fig.suptitle(title or f"{metric} by {unit}", fontsize=13)
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
