"""The sections of the study that train and test single configurations: the samples, the
optimizer comparison, the best configuration retrained and tested, MNIST and the presets.

Each section takes the run's ``Context`` and returns the plain results that ``results.json``
keeps and ``SUMMARY.md`` reads. The sweeps are in ``search``, fnn against PyTorch in
``torch_parity``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from fnn import checkpoint, data, metrics, plots, tracking
from fnn.study.context import (
    CONFIGS,
    Context,
    StudyError,
    config_from,
    describe,
    relative,
    settings_of,
    track,
    train_and_test,
)
from fnn.train import FIELDS, TrainConfig, load_splits, read_settings

# One learning rate per optimizer for the comparison: each method's usual default (SGD's is
# larger because its step is not normalised).
OPTIMIZER_RATES = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nag": 0.01,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "nadam": 1e-3,
    "eve": 1e-3,
}
COMPARISON_NET = dict(num_layers=3, hidden_size=128, activation="relu", weight_init="xavier",
                      batch_size=64, log_every=50, loss="cross_entropy", dropout=0.0,
                      lr_schedule="constant", weight_decay=0.0)  # fmt: skip
PRESET_DATASET = "mnist"  # the presets are data-agnostic; the study runs them all on MNIST


# --- 1. samples -------------------------------------------------------------------------------


def samples(ctx: Context) -> dict[str, Any]:
    folder = ctx.out / "samples"
    result = {}
    for name in ("fashion_mnist", "mnist"):
        (x_train, y_train), _ = data.load(name, data_dir=ctx.data_dir, progress=ctx.progress)
        path = plots.sample_grid(
            x_train, y_train, data.CLASS_NAMES[name], folder / f"{name}.png", title=name
        )
        tracker = tracking.start(
            ctx.tracker, {"dataset": name}, project=ctx.project, name=f"samples_{name}",
            group=ctx.group, job_type="samples", say=ctx.say,
        )  # fmt: skip
        tracker.image("samples", path, caption=f"one {name} training image per class")
        tracker.finish()
        result[name] = relative(path, ctx.out)
    return result


# --- 2. optimizers ----------------------------------------------------------------------------


def compare_optimizers(ctx: Context) -> dict[str, Any]:
    folder = ctx.out / "optimizers"
    base = dict(COMPARISON_NET, epochs=ctx.budget.optimizer_epochs)
    splits = None
    rows, histories = [], {}
    for name, rate in OPTIMIZER_RATES.items():
        config = ctx.config(
            **base, optimizer=name, learning_rate=rate, train_subset=ctx.budget.optimizer_subset
        )
        splits = splits if splits is not None else load_splits(config)
        _, record = train_and_test(ctx, config, name=name, job_type="optimizers", splits=splits)
        histories[f"{name} (lr {rate:g})"] = record["history"]
        rows.append({k: v for k, v in record.items() if k not in ("history", "test", "config")})
        rows[-1]["learning_rate"] = rate
        rows[-1]["updates_to_85"] = next(
            (e["step"] for e in record["history"]["epochs"] if e["val_accuracy"] >= 0.85), None
        )
        ctx.say(f"  {name}: val accuracy {record['val_accuracy']:.2%}")
    network = f"{'-'.join(map(str, config.hidden_layers()))} {config.activation}"
    figure = plots.curve_panels(
        histories,
        folder / "curves.png",
        panels=[
            ("epochs", "epoch", "val_accuracy"),
            ("epochs", "epoch", "val_loss"),
            ("epochs", "step", "val_accuracy"),
            ("steps", "step", "running_train_loss"),
        ],
        log_y=("running_train_loss",),
        title=f"Optimizers on {network} ({len(splits.y_train):,} training samples)",
    )
    return {
        "network": network,
        "samples": len(splits.y_train),
        "rows": sorted(rows, key=lambda row: -row["val_accuracy"]),
        "figure": relative(figure, ctx.out),
    }


# --- 6. the best configuration, retrained on train + validation -------------------------------


def best_of(sweep_results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The sweep and best trial with the highest validation accuracy over the study's sweeps."""
    candidates = [
        (key, result["best"])
        for key, result in sweep_results.items()
        if key in ("ce", "mse", "wide") and result["best"] is not None
    ]
    if not candidates:
        raise StudyError("no sweep trial completed, so there is no best configuration")
    return max(candidates, key=lambda item: item[1]["val_accuracy"])


def final(ctx: Context, sweep_results: dict[str, Any]) -> dict[str, Any]:
    folder = ctx.out / "final"
    key, best = best_of(sweep_results)
    config = config_from(ctx, best["config"], train_subset=None)
    splits = load_splits(config)
    # Train on train + validation; the validation curve is then no longer held out.
    merged = data.Splits(
        np.concatenate([splits.x_train, splits.x_val]),
        np.concatenate([splits.y_train, splits.y_val]),
        splits.x_val,
        splits.y_val,
        splits.x_test,
        splits.y_test,
    )
    params, record = train_and_test(ctx, config, name="best", job_type="final", splits=merged)
    test = record["test"]
    names = data.CLASS_NAMES[config.dataset]
    confusion = plots.confusion_figure(
        test["confusion"], names, folder / "confusion.png", title="Fashion-MNIST test set"
    )
    wrong = plots.misclassified_grid(
        splits.x_test, splits.y_test, test["predictions"], names, folder / "misclassified.png"
    )
    tracker = track(ctx, config, "best_figures", "final")
    tracker.confusion("confusion", splits.y_test, test["predictions"], names)
    tracker.image("confusion_matrix", confusion, caption="rows normalised per true class")
    tracker.image("misclassified", wrong, caption="most confused pairs")
    tracker.finish()
    saved = checkpoint.save(folder / "model", params, config.to_dict(), record["history"])
    report = metrics.report(test, names)
    return {
        "from": {"sweep": key, **{k: v for k, v in best.items() if k != "config"}},
        "config": settings_of(config),
        "description": describe(settings_of(config)),
        "train_samples": len(merged.y_train),
        "test_accuracy": record["test_accuracy"],
        "test_loss": record["test_loss"],
        "seconds": record["seconds"],
        "per_class": report["per_class"],
        "most_confused": report["most_confused"],
        "figures": [relative(confusion, ctx.out), relative(wrong, ctx.out)],
        "checkpoint": relative(saved, ctx.out),
    }


# --- 7. MNIST ---------------------------------------------------------------------------------


def mnist_choices(sweep_results: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Three distinct configurations to carry to MNIST, each with the reason for it."""
    key, best = best_of(sweep_results)
    candidates = [
        ("best overall", f"the best Fashion-MNIST configuration ({key} sweep), as it is: "
         "MNIST has the same input format and is the easier task", best["config"]),
    ]  # fmt: skip
    ce = sweep_results["ce"]["best"]
    if ce is not None:
        candidates.append(
            ("best of the assignment space", "the best configuration of the assignment's "
             "search space: a smaller, faster net; does MNIST need the capacity?", ce["config"])
        )  # fmt: skip
    mse = sweep_results["mse"]["best"]
    if mse is not None:
        candidates.append(
            ("best squared error", "the best squared-error configuration: does the loss "
             "verdict carry over to MNIST?", mse["config"])
        )  # fmt: skip
    for result in (sweep_results["wide"], sweep_results["ce"]):
        for index, config in enumerate(result["top"][1:], start=2):
            candidates.append(
                (f"{result['study']} #{index}", "the next best configuration of that sweep",
                 config)
            )  # fmt: skip
    chosen, seen = [], []
    for label, reason, config in candidates:
        settings = {k: v for k, v in config.items() if k != "val_accuracy"}
        if settings not in seen:
            seen.append(settings)
            chosen.append((label, reason, settings))
    return chosen[:3]


def mnist(ctx: Context, sweep_results: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for label, reason, settings in mnist_choices(sweep_results):
        config = config_from(ctx, settings, dataset="mnist", train_subset=None)
        _, record = train_and_test(ctx, config, name=label.replace(" ", "_"), job_type="mnist")
        rows.append(
            {
                "label": label,
                "reason": reason,
                "description": describe(settings_of(config)),
                **{k: record[k] for k in ("val_accuracy", "test_accuracy", "seconds", "epochs")},
            }
        )
        ctx.say(f"  {label}: MNIST test accuracy {record['test_accuracy']:.2%}")
    return {"rows": rows}


# --- 8. presets -------------------------------------------------------------------------------


def presets(ctx: Context) -> dict[str, Any]:
    """Each preset read as ``fnn train --config`` reads it (``read_settings``), then trained."""
    folder = CONFIGS / "presets"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise StudyError(f"no presets in {folder}")
    rows = []
    for path in files:
        try:
            settings = read_settings(path, FIELDS - {"extra", "hparams"})
        except ValueError as error:
            raise StudyError(f"{path}: {error}") from None
        settings["hidden_sizes"] = tuple(settings.get("hidden_sizes") or ())
        config = config_from(ctx, {**dataclasses.asdict(TrainConfig()), **settings},
                             dataset=PRESET_DATASET)  # fmt: skip
        _, record = train_and_test(ctx, config, name=path.stem, job_type="presets")
        rows.append(
            {
                "preset": f"configs/presets/{path.name}",
                "description": describe(settings_of(config)),
                **{k: record[k] for k in ("val_accuracy", "test_accuracy", "seconds", "epochs")},
            }
        )
        ctx.say(f"  {path.stem}: test accuracy {record['test_accuracy']:.2%}")
    return {"dataset": PRESET_DATASET, "rows": rows}
