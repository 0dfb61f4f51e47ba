"""Experiment trackers: where a training run reports its config and metrics.

The training loop talks to a ``Tracker``; ``NoTracker`` records nothing.
"""

from __future__ import annotations

from typing import Any, Protocol


class Tracker(Protocol):
    def log(self, metrics: dict[str, Any], step: int | None = None) -> None: ...

    def summary(self, metrics: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...


class NoTracker:
    """A tracker that records nothing (``--tracker none``)."""

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        pass

    def summary(self, metrics: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass
