"""The local backend: a W&B sweep configuration run as an Optuna study, without a W&B server
(``run_local``), resumable and shared by any number of worker processes (how they share it:
``fnn.sweep.workers``). Each trial trains one configuration, logs a tracker run and records
what a reader of the study needs as user attributes.

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
from fnn.sweep.optuna_space import suggest
from fnn.sweep.optuna_storage import StorageLock, check_driver
from fnn.sweep.training import (
    SPLIT_FIELDS,
    STATES,
    check_base,
    load_splits,
    new_history,
    run_summary,
    train,
    train_config,
)
from fnn.sweep.workers import (
    Skipped,
    Worker,
    heartbeat_settings,
    jsonable,
    next_step,
    open_study,
    wanted,
)
from fnn.train import TrainingDiverged

if TYPE_CHECKING:
    import optuna


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
    in ``storage`` and is resumed when it exists (a different search is refused): finished
    trials are kept. Several processes (workers) may run it at once, on one machine with SQLite
    or on several with PostgreSQL (see the module's docstring for how they coordinate).

    - ``count``: the trials to run, in total across the workers that start with the same count
      before that total is reached (an interrupted run started again finishes it); after that,
      ``count`` more. None: the rest of the grid, or up to ``run_cap``, which caps the study.
    - A grid runs each point once. A point whose trial failed other than by divergence (Ctrl-C,
      an exception, a killed worker) runs again; a diverged one is final. A worker with nothing
      left to start waits while other workers' trials run, to take over the trial of one that
      dies.
    - ``seed`` seeds the sampler of the study's first worker; later workers and resumed runs
      derive theirs from it, so they do not redraw the same values. None: a fresh seed per
      worker. Each trial records its ``sampler_seed`` and ``worker`` (host:pid).
    - Each trial reports its metric every epoch (hyperband prunes on it) and records, as user
      attributes, ``config`` (the whole training configuration), ``metric``, ``run_name``,
      ``history`` (the per-epoch metrics), ``wandb_run`` (the run's page or offline folder),
      ``grid_point`` in a grid, ``retry_of`` for a rerun and ``error`` (a diverged trial's
      message: the trial fails and the sweep goes on). Any other exception stops the sweep.
    - A ``metric.target`` reached by a complete trial stops every worker.
    - ``say`` gets a line at the start, one per finished trial, one when waiting for other
      workers and the best at the end.
    """
    import optuna

    sweep = load_config(config)
    study_name = _study_name(config, sweep, study_name)
    _check_request(sweep, count, tracker)
    base = check_base(base)
    heartbeat_settings()  # a bad override is an error before anything is created
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    url, lock = storage if isinstance(storage, str) else None, None
    try:
        if url is not None:
            check_driver(url)
        lock = StorageLock(url)
        study, worker = open_study(sweep, base, storage, study_name, seed, count, say, lock)
        _preload(sweep, base, progress)
        objective = _objective(sweep, base, worker, study_name=study_name, tracker_kind=tracker,
                               project=project or sweep.get("project") or "fnn",
                               entity=entity or sweep.get("entity"), progress=progress,
                               say=say)  # fmt: skip
        _optimize(study, sweep, objective, worker, say)
    finally:
        if lock is not None:
            lock.remove()  # SQLite's lock file
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
    if any(parameters.get(name, {}).get("distribution", "constant") != "constant"
           for name in SPLIT_FIELDS):  # fmt: skip
        return
    constants = {n: s["value"] for n, s in parameters.items() if s["distribution"] == "constant"}
    load_splits(train_config(base, constants), progress=progress)


# --- running trials ----------------------------------------------------------------------------


def _objective(sweep, base, worker, *, study_name, tracker_kind, project, entity, progress, say):
    """The Optuna objective: beat once and name the worker, skip a grid point taken meanwhile,
    free the lock (the trial is taken), suggest the sweep's values, train, report the metric
    every epoch (pruning when told) and return its last value."""
    import optuna

    metric = sweep["metric"]["name"]

    def objective(trial: optuna.Trial) -> float:
        worker.trial = trial.number
        if worker.storage is not None:  # a heartbeat before the name: see _fail_orphans
            storage = worker.storage
            storage.record_heartbeat(
                storage.get_trial_id_from_study_id_trial_number(worker.study_id, trial.number)
            )
        trial.set_user_attr("worker", worker.name)
        trial.set_user_attr("sampler_seed", worker.seed)
        if sweep["method"] == "grid" and not wanted(trial.study, trial.number):
            trial.set_user_attr("skipped", "its grid point is taken by another trial")
            raise Skipped
        worker.lock.release()
        values = {name: suggest(trial, name, spec) for name, spec in sweep["parameters"].items()}
        config = train_config(base, values)
        run_name = f"{tracking.run_name(config.to_dict())}_t{trial.number}"
        history = new_history()
        for key, value in {"run_name": run_name, "metric": metric, "history": history,
                           "config": jsonable(config.to_dict())}.items():  # fmt: skip
            trial.set_user_attr(key, value)
        tracker = tracking.start(tracker_kind, config.to_dict(), project=project, entity=entity,
                                 name=run_name, group=study_name, job_type="sweep",
                                 say=say)  # fmt: skip
        if _run_address(tracker):
            trial.set_user_attr("wandb_run", _run_address(tracker))

        def after_epoch(record: dict[str, Any]) -> None:
            trial.set_user_attr("history", history)
            if not math.isfinite(record["val_loss"]):
                return  # fit raises TrainingDiverged next: a failure, not a pruned trial
            trial.report(record[metric], record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")

        state = "FAIL"
        try:
            train(config, tracker, history, progress=progress, after_epoch=after_epoch)
            state = "COMPLETE"
            return history[metric][-1]
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except TrainingDiverged as error:
            trial.set_user_attr("error", str(error))
            raise
        finally:
            tracker.summary(run_summary(history, metric, state, sweep=study_name,
                                        trial=trial.number))  # fmt: skip
            tracker.finish()

    return objective


def _run_address(tracker: Any) -> str | None:
    """A W&B run's page, or its offline folder; None for no W&B run."""
    run = getattr(tracker, "run", None)
    if run is None:
        return None
    return getattr(run, "url", None) or str(Path(run.dir).parent)


def _optimize(study, sweep, objective, worker: Worker, say: Callable[[str], None]) -> None:
    """Run trials until the study's count, run_cap or grid is done, or its target is reached.
    Each step is decided, and its trial asked for, under the storage's lock."""
    import optuna

    metric = sweep["metric"]["name"]

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if "skipped" not in trial.user_attrs:
            say(_trial_line(trial, metric))

    first, waited_for = True, None
    while True:
        with worker.lock:  # the objective lets it go once its trial is taken
            action, budget, reason, running = next_step(study, sweep, worker)
            if first:
                say(_start_line(study, action, budget, reason, worker))
                first = False
            if action == "run":
                try:
                    study.optimize(objective, n_trials=1, catch=(TrainingDiverged, Skipped),
                                   callbacks=[after_trial])  # fmt: skip
                except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                    if study.get_trials(deepcopy=False)[worker.trial].state.name != "FAIL":
                        raise
                    say(f"trial {worker.trial} was failed by another worker while it ran here "
                        "(its heartbeat was late): it runs again")  # fmt: skip
        if action == "stop":
            if "target" in reason and not first:
                say(f"{reason}; stopping")
            break
        if action == "wait":
            numbers = [trial.number for trial in running]
            if numbers != waited_for:
                say(_waiting_line(numbers))
                waited_for = numbers
            time.sleep(max(0.5, min(heartbeat_settings())))
        else:
            waited_for = None
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        say(f"best: trial {best.number} {metric} {best.value:.4f}  {_describe(best.params)}")


def _describe(params: Mapping[str, Any]) -> str:
    return " ".join(f"{n}={f'{v:.4g}' if isinstance(v, float) else v}" for n, v in params.items())


def _trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """``trial   3 complete val_accuracy 0.8512  lr=0.001 ...  <run name>``, plus the error of a
    diverged trial."""
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    state = trial.state.name.lower()
    line = f"trial {trial.number:>3} {state:<8} {metric} {value}  {_describe(trial.params)}"
    line += f"  {trial.user_attrs.get('run_name', '')}"
    error = trial.user_attrs.get("error")
    return f"{line}  ({error})" if error else line


def _start_line(study, action: str, budget: int, reason: str, worker: Worker) -> str:
    """``study t: 6 trials so far (6 complete, 0 pruned, 0 failed); running 2 new``."""
    counts = dict.fromkeys(STATES, 0)
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] += 1
    started = sum(counts.values()) - counts["WAITING"]
    line = (
        f"study {study.study_name}: {started} trial{'' if started == 1 else 's'} so far "
        f"({counts['COMPLETE']} "
        f"complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed); "
    )
    if action != "run":
        return line + f"{reason}; no new trials"
    if worker.joined:
        return line + (f"running up to {budget} new: --count {worker.count} is the total of "
                       "the workers of this study")  # fmt: skip
    return line + f"running {budget} new"


def _waiting_line(numbers: list[int]) -> str:
    """Which trials other workers are running, and when one is run again here if its worker is
    gone."""
    grace = heartbeat_settings()[1]
    plural = "s" if len(numbers) > 1 else ""
    return (
        f"waiting for trial{plural} {', '.join(map(str, numbers))}, running in another worker; "
        f"a trial whose worker is gone is failed {grace} s after its last heartbeat and run "
        "again"
    )
