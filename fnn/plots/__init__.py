"""Figures for reports, each written as a PNG: a model's confusion matrix and mistakes
(``evaluation``), one sample of each class (``samples``), training curves (``training``),
the views of a hyperparameter sweep (``sweep``, its axes in ``scales``) and ``fnn bench``'s
speed (``speed``).

Drawn with matplotlib's object-oriented API on the non-interactive Agg canvas, so importing
or calling this package never touches pyplot's global state or the user's chosen backend.
Everything public is re-exported here: ``fnn.plots.confusion_figure`` and the rest.
"""

from fnn.plots.evaluation import CELL_TEXT, confusion_figure, misclassified_grid
from fnn.plots.samples import (
    BORDER,
    BORDER_VALUE,
    GRID_COLUMNS,
    first_of_each_class,
    sample_grid,
    sample_grid_array,
)
from fnn.plots.scales import (
    LOG_CROWDING,
    LOG_RATIO,
    MAX_LABEL_CHARS,
    MAX_VALUE_TICKS,
    MIN_TICK_GAP,
    MISSING_LABEL,
    MISSING_POSITION,
    ParallelAxis,
    parallel_axis,
    wants_log_scale,
)
from fnn.plots.speed import bench_figure
from fnn.plots.sweep import (
    FAILED_COLOUR,
    ROTATE_NAMES_OVER,
    distributions,
    importance_bar,
    metric_by_run,
    parallel_coordinates,
)
from fnn.plots.training import curve_panels, curves, overlay

__all__ = [
    "BORDER",
    "BORDER_VALUE",
    "CELL_TEXT",
    "FAILED_COLOUR",
    "GRID_COLUMNS",
    "LOG_CROWDING",
    "LOG_RATIO",
    "MAX_LABEL_CHARS",
    "MAX_VALUE_TICKS",
    "MIN_TICK_GAP",
    "MISSING_LABEL",
    "MISSING_POSITION",
    "ROTATE_NAMES_OVER",
    "ParallelAxis",
    "bench_figure",
    "confusion_figure",
    "curve_panels",
    "curves",
    "distributions",
    "first_of_each_class",
    "importance_bar",
    "metric_by_run",
    "misclassified_grid",
    "overlay",
    "parallel_axis",
    "parallel_coordinates",
    "sample_grid",
    "sample_grid_array",
    "wants_log_scale",
]
