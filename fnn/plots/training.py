"""Training curves: metrics against epoch or update for several runs side by side, and two
loss curves overlaid with their difference."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fnn.plots.common import _finite, _save


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
            low, high = ax.dataLim.intervalx
            if ax.lines and high - low < 2:  # one or two epochs: whole numbers, with room
                ax.set_xlim(low - 0.5, high + 0.5)
                ax.set_xticks(range(int(low), int(high) + 1))
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=9)
    fig.suptitle(title or "Training curves", fontsize=13)
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


def overlay(
    steps: np.ndarray,
    ours: np.ndarray,
    theirs: np.ndarray,
    path: str | Path,
    *,
    labels: tuple[str, str] = ("fnn", "PyTorch"),
    title: str = "Training loss per update",
) -> Path:
    """Two loss curves over the same updates, overlaid, and their absolute difference beneath,
    on a scale that is logarithmic above the rounding level (float64's machine epsilon times
    the largest loss) and linear below it, so that exact zeros sit at 0. A long ``title`` is
    wrapped."""
    fig = Figure(figsize=(9, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    top.plot(steps, ours, linewidth=2.4, label=labels[0])
    top.plot(steps, theirs, linewidth=1.0, linestyle="--", label=labels[1])
    top.set_ylabel("minibatch loss")
    top.legend()
    top.grid(alpha=0.3)
    difference = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
    rounding = np.finfo(np.float64).eps * max(float(np.max(np.abs(ours))), 1.0)
    bottom.plot(steps, difference, color="#b22222", linewidth=1, marker=".", markersize=2)
    bottom.set_yscale("symlog", linthresh=rounding)
    bottom.set_ylim(bottom=0)
    zeros = int(np.sum(difference == 0))
    bottom.set_ylabel(f"|{labels[0]} − {labels[1]}|")
    bottom.set_xlabel("update (step)")
    bottom.set_title(f"{zeros} of {len(difference)} updates equal (drawn at 0); linear below "
                     f"{rounding:.1e}, logarithmic above", fontsize=9)  # fmt: skip
    bottom.grid(alpha=0.3)
    heading = f"{title} — max difference {difference.max():.2e}"
    fig.suptitle(textwrap.fill(heading, 90), fontsize=12)
    return _save(fig, path)
