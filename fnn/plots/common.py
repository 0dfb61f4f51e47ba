"""What the figures share: saving one as a PNG, and which values they can draw."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fnn.constraints import is_number


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # a character the font lacks (a CJK study name) is drawn
        warnings.filterwarnings("ignore", message="Glyph .* missing from")  # as a box, once
        fig.savefig(path, dpi=120)
    fig.clear()  # free the artists now; the figure was never registered with pyplot
    return path


def _is_missing(value) -> bool:
    """``None``, NaN or ±inf (a diverged run's loss): nothing a 0..1 axis can place."""
    return value is None or (isinstance(value, float | np.floating) and not math.isfinite(value))


def _finite(value) -> bool:
    return not _is_missing(value) and is_number(value)
