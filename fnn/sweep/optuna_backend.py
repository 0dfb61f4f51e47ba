"""The local backend: a W&B sweep configuration run with Optuna, without a W&B server
(``run_local``), in a resumable study with one tracker run per trial.

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnn import tracking
from fnn.constraints import is_integer
from fnn.sweep.config import SweepConfigError, load_config
from fnn.sweep.optuna_space import _suggest
from fnn.sweep.optuna_study import (
    Step,
    Worker,
    _claim,
    _counts,
    _fail_stale,
    _next_step,
    _open_study,
    _state,
    heartbeat_settings,
)
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
    seed: int | None = 0,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> optuna.Study:
    """Run a W&B sweep configuration with Optuna, without a W&B server; returns the study.

    The study (``study_name``, default the config's ``name``, else the YAML file's stem) lives
    in ``storage`` and is resumed when it exists (a different search space is refused):
    finished trials are kept. Several processes (workers) may run it at once, on one machine
    with SQLite or on several with PostgreSQL: each claims its next trial under a lock on the
    storage (``optuna_storage``).

    - ``count``: the trials to run, in total across the workers that start with the same count
      before that total is reached (an interrupted run started again finishes it); after that,
      ``count`` more. None: the rest of the grid, or up to ``run_cap``, which caps the study.
    - A grid runs each point once. A point whose trial failed other than by divergence (Ctrl-C,
      an exception, a killed worker: its heartbeat is over ``GRACE_SECONDS`` old) runs again;
      a diverged one is final. A worker with nothing left to start waits while other workers'
      trials run, so it can take over the trial of one that dies.
    - ``seed`` seeds the random/TPE sampler of the study's first worker; later workers and
      resumed runs derive theirs from it and their number, so they do not redraw the same
      values. None: a fresh seed per worker, recorded in each trial's
      ``user_attrs["sampler_seed"]`` (with ``"worker"``, host:pid). The data split follows
      each trial's ``seed`` option (``base``'s unless the sweep sets it).
    - Each trial reports its metric every epoch (hyperband prunes on it), keeps the per-epoch
      metrics in ``user_attrs["history"]`` and logs a ``tracker`` run named like ``fnn train``'s
      plus ``_t<number>``, grouped by the study name. A diverged trial fails with its message in
      ``user_attrs["error"]``; other exceptions stop the sweep.
    - ``say`` gets a line at the start, one per finished trial, one when waiting for other
      workers and the best at the end.
    """
    import optuna

    sweep = load_config(config)
    study_name = _study_name(config, sweep, study_name)
    _check_request(sweep, count, tracker)
    base = _check_base(base)
    heartbeat_settings()  # a bad override is an error before anything is created
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    try:
        study, worker = _open_study(
            sweep, base, storage=storage, name=study_name, seed=seed, count=count, say=say
        )
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
        _optimize(study, sweep, objective, worker=worker, say=say)
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
    worker: Worker,
    say: Callable[[str], None],
) -> None:
    """Run trials until the study's count, run_cap or grid is done. Each trial is claimed under
    the storage's lock: fail stale trials, decide the next step, queue the grid point, and
    ``ask`` for the trial, which releases the lock as soon as it starts."""

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

    def claimed(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker.name)
        trial.set_user_attr("sampler_seed", worker.seed)
        worker.lock.release()  # the trial is ours: let the next worker claim one
        return objective(trial)

    first, waited_for = True, None
    while not reached:
        worker.lock.acquire()
        try:
            _fail_stale(study)
            step = _next_step(study, sweep, worker)
            if first:
                say(_start_line(study, step, worker))
                first = False
            if step.action == "run":
                _claim(study, sweep, step.work)
                study.optimize(
                    claimed, n_trials=1, catch=(TrainingDiverged,), callbacks=[after_trial]
                )
        finally:
            worker.lock.release()
        if step.action == "stop":
            break
        if step.action == "wait":
            numbers = [trial.number for trial in step.running]
            if numbers != waited_for:
                say(_waiting_line(step))
                waited_for = numbers
            time.sleep(_poll_seconds(step))
        else:
            waited_for = None
    if reached:
        say(f"trial {reached[0]} reached the target {metric} {target}; stopping")
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "COMPLETE"]
    if complete:
        best = study.best_trial
        say(f"best: trial {best.number} {metric} {best.value:.4f}  {_describe(best.params)}")


def _start_line(study: optuna.Study, step: Step, worker: Worker) -> str:
    """``study t: 6 trials so far (6 complete, 0 pruned, 0 failed); running 2 new``."""
    counts = _counts(study)
    line = (
        f"study {study.study_name}: {len(study.trials)} trials so far ({counts['COMPLETE']} "
        f"complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed); "
    )
    if step.action != "run":
        return line + f"{step.reason}; no new trials"
    if worker.joined:
        return line + (
            f"running up to {step.budget} new: --count {worker.count} is the total of the "
            "workers of this study"
        )
    return line + f"running {step.budget} new"


def _waiting_line(step: Step) -> str:
    """One line: which trials other workers are running, and when the first one is run again
    here if its worker is gone (its heartbeat GRACE_SECONDS old)."""
    grace = heartbeat_settings()[1]
    numbers = ", ".join(str(trial.number) for trial in step.running)
    plural = "s" if len(step.running) > 1 else ""
    line = f"waiting for trial{plural} {numbers}, running in another worker"
    ages = {n: age for n, age in step.ages.items() if n in {t.number for t in step.running}}
    if not ages:
        return line + f"; if its worker is gone, it is retried {grace} s after it started"
    number, age = max(ages.items(), key=lambda item: item[1])
    left = max(0, math.ceil(grace - age))
    return (
        f"{line}; trial {number}'s last heartbeat is {age:.0f} s old: if its worker is gone, "
        f"it is failed and run again here in about {left} s (grace {grace} s)"
    )


def _poll_seconds(step: Step) -> float:
    """How long to wait before looking again: a heartbeat interval, or less when a trial goes
    stale sooner."""
    interval, grace = heartbeat_settings()
    soonest = min((grace - age for age in step.ages.values()), default=interval)
    return max(0.5, min(interval, soonest + 0.5))
