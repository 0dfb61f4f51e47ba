"""What every section of the study shares: the budgets, the context a run carries, one tracked
training tested once, and how a configuration is written down for a reader."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnn import data, metrics, tracking
from fnn.constraints import is_number
from fnn.train import FIELDS, TrainConfig, fit, load_splits, validate

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class Budget:
    """How much each section trains. ``None`` keeps what the configuration says."""

    name: str
    optimizer_epochs: int
    optimizer_subset: int | None  # training samples of the optimizer comparison
    sweep_count: int  # trials of each assignment sweep (cross-entropy, squared error)
    sweep_subset: int | None
    sweep_epochs: tuple[int, ...] | None  # None: the YAML's choices
    wide_count: int | None  # trials of the wide grid; None: all of it
    epochs_cap: int | None  # caps the final, MNIST and preset trainings
    overlay_samples: int
    overlay_epochs: int


BUDGETS = {
    "quick": Budget("quick", 2, 10_000, 6, 10_000, (1, 2), 2, 2, 2_000, 1),
    "full": Budget("full", 10, None, 40, None, None, None, None, 10_000, 2),
}


class StudyError(RuntimeError):
    """A study that cannot run (missing configuration files); one line for the user."""


@dataclass
class Context:
    """Where a study writes, its budget, and the settings every training of it shares."""

    out: Path
    budget: Budget
    data_dir: str | None
    tracker: str
    subset: int | None  # an extra cap on every training set (tests)
    seed: int
    project: str
    say: Callable[[str], None]
    progress: bool

    @property
    def group(self) -> str:
        return f"study_{self.budget.name}"

    def cap(self, subset: int | None) -> int | None:
        values = [v for v in (subset, self.subset) if v is not None]
        return min(values) if values else None

    def epochs(self, epochs: int) -> int:
        cap = self.budget.epochs_cap
        return epochs if cap is None else min(epochs, cap)

    def config(self, **values: Any) -> TrainConfig:
        values["data_dir"] = values.get("data_dir") or self.data_dir
        values["seed"] = self.seed
        values["train_subset"] = self.cap(values.get("train_subset"))
        return validate(TrainConfig(**values))


def relative(path: Path, out: Path) -> str:
    return str(Path(path).relative_to(out))


def track(ctx: Context, config: TrainConfig, name: str, job_type: str) -> tracking.Tracker:
    return tracking.start(
        ctx.tracker,
        config.to_dict(),
        project=ctx.project,
        name=f"{job_type}_{name}",
        group=ctx.group,
        job_type=job_type,
        say=ctx.say,
    )


def train_and_test(
    ctx: Context,
    config: TrainConfig,
    *,
    name: str,
    job_type: str,
    splits: data.Splits | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit ``config`` (a tracked run), then evaluate once on the test set."""
    splits = splits if splits is not None else load_splits(config)
    tracker = track(ctx, config, name, job_type)
    started = time.perf_counter()
    try:
        params, history = fit(config, splits, tracker=tracker, progress=ctx.progress)
        seconds = time.perf_counter() - started
        test = metrics.evaluate(
            params, splits.x_test, splits.y_test, activation=config.activation, loss=config.loss
        )
        last = history["epochs"][-1]
        record = {
            "name": name,
            "config": settings_of(config),
            "val_accuracy": last["val_accuracy"],
            "best_val_accuracy": max(e["val_accuracy"] for e in history["epochs"]),
            "val_loss": last["val_loss"],
            "test_accuracy": test["accuracy"],
            "test_loss": test["loss"],
            "seconds": seconds,
            "epochs": len(history["epochs"]),
        }
        tracker.summary({k: v for k, v in record.items() if is_number(v)})
    finally:
        tracker.finish()
    return params, {**record, "history": history, "test": test}


def settings_of(config: TrainConfig) -> dict[str, Any]:
    """The settings of ``config`` that matter for a reader (no paths, no tracker extras)."""
    out = config.to_dict()
    for key in ("data_dir", "extra", "source", "log_every", "num_layers", "hidden_size"):
        out.pop(key, None)
    if out.get("classes") is None:
        out.pop("classes")
    if out.get("resize") is None:
        out.pop("resize")
    return out


def config_from(ctx: Context, settings: dict[str, Any], **changes: Any) -> TrainConfig:
    """A training configuration from ``settings`` (a sweep trial's, a preset's) with ``changes``
    applied and its epochs capped by the budget."""
    fields = {k: v for k, v in settings.items() if k in FIELDS and k != "val_accuracy"}
    fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    fields.update(changes)
    fields["epochs"] = ctx.epochs(fields["epochs"])
    return ctx.config(**fields)


def describe(config: dict[str, Any]) -> str:
    """A one-line description: ``784-512-512-10 relu, adam lr 1e-3 cosine, batch 64, ...``."""
    hidden = "-".join(map(str, config.get("hidden_sizes") or [])) or "linear"
    parts = [
        f"{hidden} {config['activation']}",
        f"{config['optimizer']} lr {config['learning_rate']:g}"
        + (" cosine" if config.get("lr_schedule") == "cosine" else ""),
        f"batch {config['batch_size']}",
        f"{config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}",
        f"{config['weight_init']} init",
    ]
    if config.get("weight_decay"):
        parts.append(f"L2 {config['weight_decay']:g}")
    if config.get("dropout"):
        parts.append(f"dropout {config['dropout']:g}")
    if config.get("loss") == "mean_squared_error":
        parts.append("squared error")
    return ", ".join(parts)
