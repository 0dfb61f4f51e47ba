"""One table of valid values: what each setting accepts, written once and read by everything
that checks, documents or samples it (the optimizers' factories, ``TrainConfig``, the CLI's
help text and its one-line errors, the sweep YAML check, ``fnn bench``), as scikit-learn's
``_parameter_constraints``.

    Interval(float, 0, 1, closed="left")   # 0 <= x < 1
    Interval(int, 1, None)                 # an integer >= 1
    OneOf("constant", "cosine")            # one of these names (case-insensitive)

``check(name, value)`` returns the value in its canonical type (an int, a Python float, a
lower-case name) or raises ``ConstraintError`` naming the setting and what it accepts.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


class ConstraintError(ValueError):
    """A value outside what its setting accepts; ``name`` is the setting."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name} {message}")
        self.name, self.message = name, message


def is_number(value: Any) -> bool:
    """A real number (Python or NumPy), not a bool: the one definition fnn uses."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def is_integer(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) between ``low`` and ``high`` (``None``: no
    bound); ``closed`` is "both", "left", "right" or "neither". ``optional``: None is accepted
    (meaning "unset"), and ``unset`` says what None means in messages."""

    def __init__(
        self,
        kind: type,
        low: float | None,
        high: float | None,
        *,
        closed: str = "both",
        optional: bool = False,
        unset: str = "unset",
    ):
        if kind not in (int, float) or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval(kind int or float, closed both/left/right/neither): {kind}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.optional, self.unset = optional, unset

    def __repr__(self) -> str:
        return f"Interval({self.kind.__name__}, {self.low}, {self.high}, closed={self.closed!r})"

    def contains(self, value: float) -> bool:
        """Whether the number ``value`` lies within the bounds (its type unchecked)."""
        if not math.isfinite(value):  # inf and nan are never a setting's value
            return False
        if self.low is not None:
            left = self.closed in ("both", "left")
            if value < self.low or (value == self.low and not left):
                return False
        if self.high is not None:
            right = self.closed in ("both", "right")
            if value > self.high or (value == self.high and not right):
                return False
        return True

    def describe(self, *, kind: bool = True) -> str:
        """The accepted values as a user reads them: "> 0", "an integer >= 1", "in [0, 1)"
        (without "an integer" when ``kind`` is false)."""
        words = "an integer " if self.kind is int and kind else ""
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            brackets = ("[" if left else "(", "]" if right else ")")
            text = f"{words}in {brackets[0]}{self.low:g}, {self.high:g}{brackets[1]}"
        elif self.low is not None:
            text = f"{words}{'>=' if left else '>'} {self.low:g}"
        elif self.high is not None:
            text = f"{words}{'<=' if right else '<'} {self.high:g}"
        else:
            text = "an integer" if self.kind is int else "a finite number"
        return f"{text} (or {self.unset})" if self.optional else text

    def check(self, name: str, value: Any) -> Any:
        """``value`` as an int or a Python float (a string such as '1e-3' from YAML is
        read as a number), or ``ConstraintError``."""
        if value is None and self.optional:
            return None
        if isinstance(value, str) and self.kind is float:
            try:
                value = float(value)
            except ValueError:
                pass
        if self.kind is int and not is_integer(value):
            raise ConstraintError(name, f"must be an integer; got {value!r}")
        if not is_number(value):
            raise ConstraintError(name, f"must be a number; got {value!r}")
        if not self.contains(float(value)):
            raise ConstraintError(name, f"must be {self.describe(kind=False)}; got {value!r}")
        return int(value) if self.kind is int else float(value)

    def sample_kind(self) -> str:
        """``int`` or ``float``: how a sweep samples this setting."""
        return self.kind.__name__


class OneOf:
    """One of the names ``options`` (case-insensitive; a callable giving them is read when
    checked, so a registry that grows after import is seen), or None when ``optional``."""

    kind = str

    def __init__(self, options: Iterable[str] | Callable[[], Iterable[str]], *, optional=False):
        self._options = options if callable(options) else tuple(options)
        self.optional = optional

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self._options() if callable(self._options) else self._options)

    def __repr__(self) -> str:
        return f"OneOf{self.options!r}"

    def describe(self) -> str:
        return f"one of {', '.join(self.options)}"

    def check(self, name: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or value.lower() not in self.options:
            raise ConstraintError(name, f"must be {self.describe()}; got {value!r}")
        return value.lower()

    def sample_kind(self) -> str:
        return "str"


class Widths:
    """Hidden-layer widths: one or more integers >= 1, as a list, a tuple or text such as
    "512,256"; None when ``optional``."""

    kind = tuple

    def __init__(self, *, optional: bool = False):
        self.optional = optional

    def __repr__(self) -> str:
        return "Widths()"

    def describe(self) -> str:
        return "positive widths such as 512,256"

    def check(self, name: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        widths = value
        if isinstance(value, str):
            try:
                widths = [int(part) for part in value.split(",") if part.strip()]
            except ValueError:
                widths = None
        if (
            not isinstance(widths, list | tuple)
            or not widths
            or not all(is_integer(w) and w >= 1 for w in widths)
        ):
            raise ConstraintError(name, f"must be {self.describe()}; got {value!r}")
        return tuple(int(w) for w in widths)

    def sample_kind(self) -> str:
        return "tuple"


Constraint = Interval | OneOf | Widths

# The ranges most settings share.
POSITIVE = Interval(float, 0, None, closed="neither")
NON_NEGATIVE = Interval(float, 0, None, closed="left")
UNIT = Interval(float, 0, 1, closed="left")  # [0, 1): decay rates, momentum, dropout
POSITIVE_INT = Interval(int, 1, None)
GOALS = OneOf(("maximize", "minimize"))
