"""The local backend: a W&B sweep configuration run with Optuna, without a W&B server
(``run_local``), in a resumable study with one tracker run per trial.

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnn import tracking
from fnn.constraints import is_integer
from fnn.sweep.config import SweepConfigError, load_config
from fnn.sweep.optuna_space import _suggest
from fnn.sweep.optuna_study import _counts, _open_study, _plan, _requeue, _state
from fnn.sweep.training import (
    SPLIT_FIELDS,
    _check_base,
    _new_history,
    _summary,
    _train,
    _train_config,
    load_splits,
)
from fnn.train import TrainingDiverged

if TYPE_CHECKING:
    import optuna


def _describe(params: Mapping[str, Any]) -> str:
    return " ".join(f"{name}={_short(value)}" for name, value in params.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """``trial   3 complete val_accuracy 0.8512  lr=0.001 ...  <run name>``, plus the error of a
    diverged trial."""
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    state = _state(trial).lower()
    line = f"trial {trial.number:>3} {state:<8} {metric} {value}  {_describe(trial.params)}"
    line += f"  {trial.user_attrs.get('run_name', '')}"
    error = trial.user_attrs.get("error")
    return f"{line}  ({error})" if error else line


def _objective(
    sweep: dict,
    base: dict,
    *,
    study_name: str,
    tracker_kind: str,
    project: str,
    entity: str | None,
    progress: bool,
    say: Callable[[str], None],
) -> Callable[[optuna.Trial], float]:
    """The Optuna objective: suggest the sweep's values, train, report ``metric`` every epoch
    (pruning when told) and return its last value."""
    import optuna

    metric = sweep["metric"]["name"]

    def objective(trial: optuna.Trial) -> float:
        values = {name: _suggest(trial, name, spec) for name, spec in sweep["parameters"].items()}
        config = _train_config(base, values)
        run_name = f"{tracking.run_name(config.to_dict())}_t{trial.number}"
        trial.set_user_attr("run_name", run_name)
        tracker = tracking.start(
            tracker_kind,
            config.to_dict(),
            project=project,
            entity=entity,
            name=run_name,
            group=study_name,
            job_type="sweep",
            say=say,
        )
        history = _new_history()

        def after_epoch(record: dict[str, Any]) -> None:
            trial.set_user_attr("history", history)
            if not math.isfinite(record["val_loss"]):
                return  # fit raises TrainingDiverged next: a failure, not a pruned trial
            trial.report(record[metric], record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")

        state = "FAIL"
        try:
            _train(config, tracker, history, progress=progress, after_epoch=after_epoch)
            state = "COMPLETE"
            return history[metric][-1]
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except TrainingDiverged as error:
            trial.set_user_attr("error", str(error))
            raise
        finally:
            tracker.summary(_summary(history, metric, state, sweep=study_name, trial=trial.number))
            tracker.finish()

    return objective


def run_local(
    config: str | os.PathLike | dict,
    *,
    count: int | None,
    base: dict,
    storage: str = "sqlite:///sweeps.db",
    study_name: str | None = None,
    tracker: str = "wandb",
    project: str | None = None,
    entity: str | None = None,
    seed: int = 0,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> optuna.Study:
    """Run a W&B sweep configuration with Optuna, without a W&B server; returns the study.

    The study (``study_name``, default the config's ``name``, else the YAML file's stem) lives
    in ``storage`` and is resumed when it exists (a different search space is refused):
    finished trials are kept and ``count`` new ones run (None: the rest of the grid, or up to
    ``run_cap``, which caps the study across processes).

    - A grid never reruns a finished point. A point whose trial failed other than by
      divergence (Ctrl-C, an exception, a process killed: its heartbeat is over
      ``GRACE_SECONDS`` old) is queued again; a diverged one is final.
    - ``seed`` seeds the random/TPE sampler; a resumed invocation reseeds it from ``seed`` and
      the number of trials so far, so it does not redraw earlier values. Workers sharing a
      study at the same time should use different seeds. The data split follows each trial's
      ``seed`` option (``base``'s unless the sweep sets it).
    - Each trial reports its metric every epoch (hyperband prunes on it), keeps the per-epoch
      metrics in ``user_attrs["history"]`` and logs a ``tracker`` run named like ``fnn train``'s
      plus ``_t<number>``, grouped by the study name. A diverged trial fails with its message in
      ``user_attrs["error"]``; other exceptions stop the sweep.
    - ``say`` gets a line at the start, one per finished trial and the best at the end.
    """
    import optuna

    sweep = load_config(config)
    study_name = _study_name(config, sweep, study_name)
    _check_request(sweep, count, tracker)
    base = _check_base(base)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    try:
        study = _open_study(sweep, base, storage=storage, name=study_name, seed=seed, say=say)
        _preload(sweep, base, progress)
        objective = _objective(
            sweep,
            base,
            study_name=study_name,
            tracker_kind=tracker,
            project=project or sweep.get("project") or "fnn",
            entity=entity or sweep.get("entity"),
            progress=progress,
            say=say,
        )
        _optimize(study, sweep, objective, count=count, say=say)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study


def _study_name(config: str | os.PathLike | dict, sweep: dict, study_name: str | None) -> str:
    """``study_name``, else the sweep's ``name``, else the stem of the YAML file."""
    if study_name is None and not isinstance(config, Mapping):
        study_name = sweep.get("name") or Path(config).stem
    study_name = study_name or sweep.get("name")
    if not study_name:
        raise SweepConfigError("the study needs a name: set `name:` in the sweep or pass one")
    return study_name


def _check_request(sweep: dict, count: int | None, tracker: str) -> None:
    """Refuse a count or tracker that cannot run, and a sweep that would never end."""
    if count is not None and not (is_integer(count) and count >= 0):
        raise SweepConfigError(f"count must be an integer >= 0 (or None); got {count!r}")
    if tracker not in tracking.TRACKERS:
        raise SweepConfigError(
            f"tracker must be one of {', '.join(tracking.TRACKERS)}; got {tracker!r}"
        )
    if sweep["method"] != "grid" and count is None and "run_cap" not in sweep:
        raise SweepConfigError(
            f"a {sweep['method']} sweep never finishes by itself: give a count or set run_cap"
        )


def _preload(sweep: dict, base: dict, progress: bool) -> None:
    """Load the data before the first trial when no split option varies, so a missing data set
    is one error up front instead of a failed trial."""
    parameters = sweep["parameters"]
    varying = [
        name
        for name in SPLIT_FIELDS
        if name in parameters and parameters[name]["distribution"] != "constant"
    ]
    if varying:
        return
    constants = {
        name: spec["value"]
        for name, spec in parameters.items()
        if spec["distribution"] == "constant"
    }
    load_splits(_train_config(base, constants), progress=progress)


def _optimize(
    study: optuna.Study,
    sweep: dict,
    objective: Callable,
    *,
    count: int | None,
    say: Callable[[str], None],
) -> None:
    import optuna

    metric, goal = sweep["metric"]["name"], sweep["metric"]["goal"]
    finished: list[optuna.trial.FrozenTrial] = []
    target = sweep["metric"].get("target")
    reached: list[int] = []

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished.append(trial)
        say(_trial_line(trial, metric))
        if target is not None and trial.value is not None and _state(trial) == "COMPLETE":
            if (trial.value >= target) if goal == "maximize" else (trial.value <= target):
                reached.append(trial.number)
                study.stop()

    callbacks = [after_trial]
    if sweep.get("run_cap"):
        states = (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL,
        )
        callbacks.append(optuna.study.MaxTrialsCallback(sweep["run_cap"], states=states))

    counts = _counts(study)
    budget, reason, retry = _plan(study, sweep, count, 0)
    say(
        f"study {study.study_name}: {len(study.trials)} trials so far ({counts['COMPLETE']} "
        f"complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed); "
        + (f"running {budget} new" if budget else f"{reason}; no new trials")
    )
    # GridSampler stops the study when it sees no unvisited point, even with a requeued point
    # still waiting; so optimize again until the plan says there is nothing left.
    while budget and not reached:
        _requeue(study, retry)
        before = len(finished)
        study.optimize(objective, n_trials=budget, catch=(TrainingDiverged,), callbacks=callbacks)
        if len(finished) == before:
            break
        budget, reason, retry = _plan(study, sweep, count, len(finished))
    if reached:
        say(f"trial {reached[0]} reached the target {metric} {target}; stopping")
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "COMPLETE"]
    if complete:
        best = study.best_trial
        say(f"best: trial {best.number} {metric} {best.value:.4f}  {_describe(best.params)}")
