"""Training one configuration of a sweep, shared by both backends: the base options merged
with a trial's values, the data splits loaded once per process and shared by the trials, the
per-epoch history and the run summary of how the trial ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fnn import data, tracking
from fnn.sweep.config import METRICS, SweepConfigError, as_field
from fnn.train import FIELDS, TrainConfig, fit, validate
from fnn.train import load_splits as load_training_splits

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")  # Optuna's TrialState names
SPLIT_FIELDS = ("dataset", "data_dir", "val_fraction", "train_subset", "seed", "dtype", "source",
                "classes", "resize")  # fmt: skip

_SPLITS: dict[tuple, data.Splits] = {}


def load_splits(config: TrainConfig, *, progress: bool = False) -> data.Splits:
    """The splits of ``config``, loaded once per process per (dataset, data_dir, val_fraction,
    train_subset, seed, dtype, source): trials that share them share the arrays."""
    key = tuple(getattr(config, name) for name in SPLIT_FIELDS)
    if key not in _SPLITS:
        _SPLITS[key] = load_training_splits(config, progress=progress)
    return _SPLITS[key]


def check_base(base: Mapping | None) -> dict:
    """``base`` (TrainConfig fields the sweep does not set) as a dict; a bad value raises
    ``ConfigError`` naming the option, as ``fnn train`` does."""
    base = dict(base or {})
    unknown = sorted(set(base) - FIELDS)
    if unknown:
        raise SweepConfigError(
            f"base configuration: unknown option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(FIELDS))}"
        )
    train_config(base, {})
    return base


def train_config(base: Mapping, values: Mapping) -> TrainConfig:
    """The validated configuration of ``base`` with a trial's ``values``: an optimizer
    hyperparameter that is not a TrainConfig field goes into ``hparams``."""
    merged = {name: as_field(name, value) for name, value in {**base, **values}.items()}
    hparams = dict(merged.pop("hparams", None) or {})
    hparams.update({name: merged.pop(name) for name in list(merged) if name not in FIELDS})
    return validate(TrainConfig(**merged, hparams=hparams))


def new_history() -> dict[str, list[float]]:
    return {name: [] for name in METRICS}


def train(
    config: TrainConfig,
    tracker: tracking.Tracker,
    history: dict[str, list[float]],
    *,
    progress: bool,
    after_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Fit ``config``, appending every epoch's four metrics to ``history`` (the caller's, so
    it keeps the epochs done when training stops early); then ``after_epoch(record)``, which
    may raise to stop (``optuna.TrialPruned``)."""

    def on_epoch(record: dict[str, Any]) -> None:
        for name in METRICS:
            history[name].append(float(record[name]))
        if after_epoch is not None:
            after_epoch(record)

    splits = load_splits(config, progress=progress)
    fit(config, splits, tracker=tracker, progress=progress, on_epoch=on_epoch)


def run_summary(history: dict[str, list], metric: str, state: str, **extra: Any) -> dict[str, Any]:
    """The run summary of a trial: ``metric`` of the last epoch, the best val_accuracy, how many
    epochs ran and how the trial ended (``sweep_state``: COMPLETE, PRUNED or FAIL)."""
    summary: dict[str, Any] = {"sweep_state": state, "epochs_run": len(history[metric]), **extra}
    if history[metric]:
        summary[metric] = history[metric][-1]
        summary["best_val_accuracy"] = max(history["val_accuracy"])
    return summary
