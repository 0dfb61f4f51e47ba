"""Sections 3 to 5 of the study: the sweeps (cross-entropy, squared error, the wide grid), each
run or resumed through fnn's local sweep backend and reported as ``fnn sweep-report`` does, and
the comparison of the two losses under the same sweep budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fnn import plots
from fnn import sweep as sweeps
from fnn.study.context import CONFIGS, Context, StudyError, relative, settings_of


def _sweep_storage_url(ctx: Context) -> str:
    return f"sqlite:///{(ctx.out / 'sweeps.db').resolve()}"


def _sweep_definition(ctx: Context, filename: str, count: int | None, epochs) -> dict:
    path = CONFIGS / filename
    if not path.is_file():
        raise StudyError(f"{path} is missing: fnn study needs the configs/ folder of the checkout")
    sweep = sweeps.load_config(path)
    if epochs is not None:
        sweep["parameters"]["epochs"] = {"distribution": "categorical", "values": list(epochs)}
    if count is not None:
        sweep["run_cap"] = count
    return sweep


def run_sweep(ctx: Context, key: str, filename: str, *, count: int | None, subset, epochs):
    """Run (or resume) one sweep of the study and write its report into ``out/<key>``."""
    sweep = _sweep_definition(ctx, filename, count, epochs)
    name = f"{ctx.budget.name}_{key}"
    base = {"data_dir": ctx.data_dir, "seed": ctx.seed, "train_subset": ctx.cap(subset)}
    study = sweeps.run_local(
        sweep,
        count=None,  # up to run_cap (or the whole grid): a second invocation resumes
        base=base,
        storage=_sweep_storage_url(ctx),
        study_name=name,
        tracker=ctx.tracker,
        project=ctx.project,
        seed=ctx.seed,
        say=lambda line: ctx.say("  " + line),
    )
    paths = sweeps.report(name, out=ctx.out / key, storage=_sweep_storage_url(ctx), top=10)
    trials = sweeps.study_trials(study)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None
    importances = _read_importances(paths["importance_table"])
    return {
        "study": name,
        "yaml": f"configs/{filename}",
        "method": sweep["method"],
        "space": _space_size(sweep),
        "trials": trials,
        "values": [t.value for t in complete],
        "states": _states(trials),
        "best": None if best is None else {
            "trial": best.number,
            "val_accuracy": best.value,
            "config": settings_of(sweeps.trial_config(study, best)),
            "run_name": best.user_attrs.get("run_name"),
        },
        "importances": importances,
        "report": {k: relative(v, ctx.out) for k, v in paths.items()},
        "top": [settings_of(sweeps.trial_config(study, t)) | {"val_accuracy": t.value}
                for t in sorted(complete, key=lambda t: -t.value)[:10]],
    }  # fmt: skip


def _space_size(sweep: dict) -> int | None:
    size = 1
    for spec in sweep["parameters"].values():
        if spec["distribution"] == "categorical":
            size *= len(spec["values"])
        elif spec["distribution"] != "constant":
            return None
    return size


def _states(trials: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial["state"]] = counts.get(trial["state"], 0) + 1
    return counts


def _read_importances(path: Path) -> dict[str, float]:
    lines = Path(path).read_text().splitlines()[1:]
    return {name: float(value) for name, value in (line.split(",") for line in lines if line)}


def run_sweeps(ctx: Context) -> dict[str, Any]:
    b = ctx.budget
    result = {
        "ce": run_sweep(ctx, "sweep_ce", "sweep_assignment.yaml", count=b.sweep_count,
                        subset=b.sweep_subset, epochs=b.sweep_epochs),
        "mse": run_sweep(ctx, "sweep_mse", "sweep_assignment_mse.yaml", count=b.sweep_count,
                         subset=b.sweep_subset, epochs=b.sweep_epochs),
        "wide": run_sweep(ctx, "sweep_wide", "sweep_wide.yaml", count=b.wide_count,
                          subset=None, epochs=None if b.epochs_cap is None else (b.epochs_cap,)),
    }  # fmt: skip
    result["loss"] = compare_losses(ctx, result["ce"], result["mse"])
    return result


def compare_losses(ctx: Context, ce: dict, mse: dict) -> dict[str, Any]:
    """Cross-entropy against squared error under the same sweep budget: the distribution of
    validation accuracies and the training curves of each sweep's best trial."""
    folder = ctx.out / "loss"
    groups = {"cross-entropy": ce["values"], "squared error": mse["values"]}
    spread = plots.distributions(
        groups, folder / "val_accuracy.png", title="Validation accuracy of completed trials"
    )
    histories = {}
    for label, result in (("cross-entropy", ce), ("squared error", mse)):
        best = result["best"]
        if best is None:
            continue
        history = next(t for t in _trial_histories(ctx, result["study"]) if t[0] == best["trial"])[
            1
        ]
        histories[f"{label}: best trial {best['trial']}"] = {"epochs": history}
    curves = plots.curve_panels(
        histories,
        folder / "best_curves.png",
        panels=[("epochs", "epoch", "val_accuracy"), ("epochs", "epoch", "train_loss")],
        title="Best trial of each sweep (the loss axis is each run's own loss)",
    )
    summary = {}
    for label, values in groups.items():
        v = np.asarray(values, dtype=float)
        summary[label] = {
            "n": int(v.size),
            "best": float(v.max()) if v.size else None,
            "median": float(np.median(v)) if v.size else None,
            "above_85": int((v >= 0.85).sum()),
        }
    return {
        "summary": summary,
        "figures": [relative(spread, ctx.out), relative(curves, ctx.out)],
    }


def _trial_histories(ctx: Context, study_name: str) -> list[tuple[int, list[dict]]]:
    """``(trial number, per-epoch records)`` of every trial of a study."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=_sweep_storage_url(ctx))
    out = []
    for trial in study.get_trials(deepcopy=False):
        history = trial.user_attrs.get("history") or {}
        epochs = len(history.get("val_accuracy", []))
        records = [
            {"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}}
            for i in range(epochs)
        ]
        out.append((trial.number, records))
    return out
