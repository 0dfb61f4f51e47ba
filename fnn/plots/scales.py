"""Where a sweep's trials sit on the axes of a parallel-coordinates plot: each column of
values mapped onto 0..1 on a linear, log or categorical scale, with the ticks to label it and
a place below the axis for missing values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from matplotlib.ticker import LogLocator, MaxNLocator

from fnn.constraints import is_number
from fnn.plots.common import _is_missing

LOG_RATIO = 20.0  # see wants_log_scale
LOG_CROWDING = 0.25
MAX_VALUE_TICKS = 6  # numeric axes with this many distinct values or fewer tick every value
MIN_TICK_GAP = 0.05  # ticks closer than this (in axis units 0..1) are thinned out
MISSING_POSITION = -0.12  # where a missing value sits, below the axis, at a "—" tick
MISSING_LABEL = "—"
MAX_LABEL_CHARS = 14  # longer category names are cut short with "…"


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
    if present and all(is_number(value) for value in present):
        axis = _numeric_axis(values, np.array(present, dtype=np.float64))
    else:
        axis = _categorical_axis(values, present)
    if len(present) == len(values):
        return axis
    return axis._replace(
        ticks=np.append(axis.ticks, MISSING_POSITION), labels=[*axis.labels, MISSING_LABEL]
    )


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
