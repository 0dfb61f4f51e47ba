"""The Optuna study a local sweep lives in, shared by every worker (process) that opens it:
created or resumed under the storage's lock (``optuna_storage``), with heartbeats (so the
trials of a killed worker are failed and run again); the sweep and base options it remembers;
each worker's number and sampler seed, and the trial total its ``count`` asks for (``Worker``);
what a worker does next (``_next_step``: run a trial, on which grid point; wait for the trials
of other workers; or stop); and its trials read back (``study_trials``, ``trial_config``).

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fnn.sweep.config import SweepConfigError
from fnn.sweep.optuna_space import _decoded, grid_space, optuna_pruner, optuna_sampler
from fnn.sweep.optuna_storage import (
    StorageLock,
    check_driver,
    database_url,
    retry_creation,
    shown,
    sqlite_path,
)
from fnn.sweep.training import STATES, _train_config
from fnn.train import TrainConfig

if TYPE_CHECKING:
    import optuna


# A running trial records a heartbeat every HEARTBEAT_SECONDS; once its last one is over
# GRACE_SECONDS old (its worker was killed, or its machine lost), the next worker to claim a
# trial marks it FAIL, and it is run again (in a grid: its point).
HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 60
# The environment overrides both, in whole seconds, for worker processes that cannot be patched
# (the tests' subprocess workers): FNN_SWEEP_HEARTBEAT_SECONDS and FNN_SWEEP_GRACE_SECONDS.
HEARTBEAT_ENV, GRACE_ENV = "FNN_SWEEP_HEARTBEAT_SECONDS", "FNN_SWEEP_GRACE_SECONDS"

WORKERS_ATTR = "workers"  # study user attr: how many workers have opened the study
COUNT_ATTR = "count"  # study user attr: {"count": N, "target": trials} of the latest count


def heartbeat_settings() -> tuple[int, int]:
    """(heartbeat interval, grace period) in seconds: the module's, or the environment's."""

    def read(name: str, default: int) -> int:
        text = os.environ.get(name, "").strip()
        if not text:
            return default
        if not text.isdigit() or int(text) < 1:
            raise SweepConfigError(f"{name} must be a whole number of seconds >= 1; got {text!r}")
        return int(text)

    return read(HEARTBEAT_ENV, HEARTBEAT_SECONDS), read(GRACE_ENV, GRACE_SECONDS)


@dataclass
class Worker:
    """This process's part in a shared study: the storage's ``lock``; its ``number`` among the
    study's workers (0 for the first ever); its sampler ``seed``; and ``target``, the number
    of counted trials (finished for good, or running) at which it stops (None: no count).
    ``joined``: the target was set by another worker (or an interrupted run) with the same
    count, so the count is their total."""

    lock: StorageLock
    number: int
    seed: int
    count: int | None
    target: int | None
    joined: bool
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def _open_study(
    sweep: dict,
    base: dict,
    *,
    storage: Any,
    name: str,
    seed: int | None,
    count: int | None,
    say: Callable[[str], None],
) -> tuple[optuna.Study, Worker]:
    """The study ``name`` in ``storage``, created or resumed, with the sampler and pruner of
    ``sweep``, and this process's part in it. Creating the tables and the study holds the
    storage's lock (and is retried on a collision with a creator that does not take it); the
    trials of dead workers (stale heartbeats) are marked failed."""
    import optuna

    url = storage if isinstance(storage, str) else None
    if url is not None:
        check_driver(url)
        storage = database_url(url)
    lock = StorageLock(url)
    with lock:
        study = retry_creation(
            lambda: optuna.create_study(
                storage=_storage(storage),
                study_name=name,
                load_if_exists=True,
                sampler=optuna_sampler(sweep, 0),
                pruner=optuna_pruner(sweep, base),
                direction=sweep["metric"]["goal"],
            )
        )
        _remember(study, sweep, base, say)
        _fail_stale(study)
        number = int(study.user_attrs.get(WORKERS_ATTR, 0))
        study.set_user_attr(WORKERS_ATTR, number + 1)
        trials = study.get_trials(deepcopy=False)
        worker_seed = _worker_seed(seed, number, len(trials))
        study.sampler = optuna_sampler(sweep, worker_seed)
        target, joined = _target(study, trials, count)
    return study, Worker(lock, number, worker_seed, count, target, joined)


def _worker_seed(seed: int | None, number: int, existing: int) -> int:
    """The sampler seed of worker ``number``, which finds ``existing`` trials in the study.

    Without ``seed``: fresh OS entropy, so workers never draw the same values (each trial
    records the seed in ``user_attrs["sampler_seed"]``). With one: the seed itself for the
    first worker of a new study (a single run repeats as before), else a seed derived from it,
    the worker's number and ``existing``. A run is reproducible run by run, and workers
    started together with the same seed, or a resumed run, do not redraw earlier values."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if number == 0 and existing == 0:
        return seed
    return int(np.random.SeedSequence([seed, number, existing]).generate_state(1)[0])


def _target(study: optuna.Study, trials: list, count: int | None) -> tuple[int | None, bool]:
    """The counted trials at which a worker asked for ``count`` stops, and whether it joins
    the total of earlier workers. The latest count is stored in the study: a worker with the
    same count, arriving before that total is finished, shares it (so workers started
    together run ``count`` in all, and an interrupted run started again finishes it);
    otherwise the target is the counted trials so far plus ``count``."""
    if count is None:
        return None, False
    latest = study.user_attrs.get(COUNT_ATTR) or {}
    finished = sum(_final(trial) for trial in trials)
    if latest.get("count") == count and finished < latest.get("target", 0):
        return int(latest["target"]), True
    target = sum(_taken(trial) for trial in trials) + count
    if count:
        study.set_user_attr(COUNT_ATTR, {"count": count, "target": target})
    return target, False


def _fail_stale(study: optuna.Study) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _storage(storage: Any) -> Any:
    """An RDB URL becomes an ``RDBStorage`` with heartbeats (so trials of a killed process are
    failed, and retried in a grid); a storage object is used as given."""
    import optuna

    if not isinstance(storage, str):
        return storage
    options: dict[str, Any] = {}
    path = sqlite_path(storage)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # several workers write to one file: wait for a lock rather than fail after 5 s
        options["connect_args"] = {"timeout": 60}
    interval, grace = heartbeat_settings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            storage, engine_kwargs=options, heartbeat_interval=interval, grace_period=grace
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


DEFINITION_KEYS = ("method", "parameters", "metric", "early_terminate")


def _definition(sweep: dict) -> dict:
    """What makes the trials of a study comparable (a new target, run_cap or name does not)."""
    definition = {key: sweep.get(key) for key in DEFINITION_KEYS}
    definition["metric"] = {key: sweep["metric"][key] for key in ("name", "goal")}
    return _jsonable(definition)


def _remember(study: optuna.Study, sweep: dict, base: dict, say: Callable[[str], None]) -> None:
    """Store the sweep and base options in a new study; for an existing one, refuse a different
    search (its trials would not be comparable) and point out changed base options."""
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", _jsonable(sweep))
        study.set_user_attr("base", _jsonable(base))
        return
    old_definition, definition = _definition(stored), _definition(sweep)
    differs = [key for key in DEFINITION_KEYS if old_definition[key] != definition[key]]
    if differs:
        raise SweepConfigError(
            f"study {study.study_name!r} was created from a different sweep ({', '.join(differs)}"
            " changed); give it another name or storage"
        )
    old, new = study.user_attrs.get("base", {}), _jsonable(base)
    changed = sorted(
        key for key in set(old) | set(new) if key != "data_dir" and old.get(key) != new.get(key)
    )
    if changed:
        say(
            "note: base options differ from the study's first run: "
            + ", ".join(f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in changed)
        )


def _state(trial: optuna.trial.FrozenTrial) -> str:
    return trial.state.name


def _final(trial: optuna.trial.FrozenTrial) -> bool:
    """Finished for good: complete, pruned, or failed by divergence (which a rerun repeats).
    Other failures (Ctrl-C, a killed process, an exception) are worth running again."""
    state = _state(trial)
    return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and "error" in trial.user_attrs)


def _taken(trial: optuna.trial.FrozenTrial) -> bool:
    """Counted against ``count`` and ``run_cap``: finished for good, or running. A trial that
    failed otherwise (its worker killed or interrupted) is not: another one runs instead."""
    return _final(trial) or _state(trial) == "RUNNING"


def _grid_status(trials: list, size: int) -> dict[str, list]:
    """Grid ids by status: done, running, queued (waiting), retry (failed, not final) and new
    (never started). A point's best status wins: done > running > queued > retry."""
    rank = {"done": 0, "running": 1, "queued": 2, "retry": 3}
    best: dict[int, tuple[str, optuna.trial.FrozenTrial]] = {}
    for trial in trials:
        grid_id = trial.system_attrs.get("grid_id")
        if grid_id is None:
            continue
        state = _state(trial)
        status = (
            "done"
            if _final(trial)
            else {"RUNNING": "running", "WAITING": "queued"}.get(state, "retry")
        )
        if grid_id not in best or rank[status] < rank[best[grid_id][0]]:
            best[grid_id] = (status, trial)
    groups: dict[str, list] = {name: [] for name in (*rank, "new")}
    for grid_id in range(size):
        status, trial = best.get(grid_id, ("new", None))
        groups[status].append(trial if status == "retry" else grid_id)
    return groups


def _counts(study: optuna.Study) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for trial in study.get_trials(deepcopy=False):
        counts[_state(trial)] += 1
    return counts


def _plan(trials: list, sweep: dict, worker: Worker) -> tuple[int, str, list]:
    """How many trials are left to start (by all workers), why not more, and the grid's work
    in the order to take it: ("queued", id), ("retry", failed trial), ("new", id)."""
    taken = sum(_taken(trial) for trial in trials)
    budget, reason = math.inf, ""
    if worker.target is not None:
        budget, reason = worker.target - taken, f"count {worker.count} reached"
    run_cap = sweep.get("run_cap")
    if run_cap is not None and run_cap - taken < budget:
        budget, reason = run_cap - taken, f"run_cap {run_cap} reached"
    work: list = []
    if sweep["method"] == "grid":
        size = math.prod(len(values) for values in grid_space(sweep).values())
        status = _grid_status(trials, size)
        work = [("queued", i) for i in status["queued"]] + [("retry", t) for t in status["retry"]]
        work += [("new", i) for i in status["new"]]
        if len(work) < budget:
            running = f", {len(status['running'])} running" if status["running"] else ""
            budget = len(work)
            reason = f"grid exhausted: {len(status['done'])} of {size} points done{running}"
    return max(0, int(budget)), reason, work


@dataclass
class Step:
    """A worker's next step: ``run`` a trial (``work``: the grid point to take, or None),
    ``wait`` for the ``running`` trials of other workers (if one of them dies, its trial is to
    run again), or ``stop``. ``budget``: trials left to start; ``reason``: why not more."""

    action: str
    budget: int
    reason: str
    work: tuple | None = None
    running: list = field(default_factory=list)
    ages: dict = field(default_factory=dict)


def _next_step(study: optuna.Study, sweep: dict, worker: Worker) -> Step:
    """What ``worker`` does next; taken under the storage's lock, after failing stale trials."""
    trials = study.get_trials(deepcopy=False)
    budget, reason, work = _plan(trials, sweep, worker)
    if budget:
        return Step("run", budget, reason, work[0] if work else None)
    running = [trial for trial in trials if _state(trial) == "RUNNING"]
    others = [trial for trial in trials if _state(trial) != "RUNNING"]
    if not running or not _plan(others, sweep, worker)[0]:
        return Step("stop", 0, reason)
    ages = _heartbeat_ages(study)
    if ages is None:  # a storage without heartbeats: a dead worker's trial is never failed
        return Step("stop", 0, reason)
    for trial in running:
        if trial.number not in ages:
            # Claimed by a worker that died before its first heartbeat (or by a client that
            # sends none): give it one, so that it goes stale and is failed like the others.
            study._storage.record_heartbeat(trial._trial_id)
            ages[trial.number] = 0.0
    return Step("wait", 0, reason, running=running, ages=ages)


def _heartbeat_ages(study: optuna.Study) -> dict[int, float] | None:
    """Seconds since the last heartbeat of each running trial that has one, by trial number,
    on the database's clock as Optuna's stale check reads it (None for a storage without
    heartbeats, or if they cannot be read)."""
    if getattr(study._storage, "get_heartbeat_interval", lambda: None)() is None:
        return None
    try:
        import sqlalchemy
        from optuna.storages._rdb import models  # Optuna has no public reader of heartbeats
        from optuna.trial import TrialState

        storage = getattr(study._storage, "_backend", study._storage)
        session = storage.scoped_session()
        try:
            now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
            rows = (
                session.query(models.TrialModel.number, models.TrialHeartbeatModel.heartbeat)
                .join(models.TrialHeartbeatModel)
                .filter(models.TrialModel.study_id == study._study_id)
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .all()
            )
        finally:
            session.close()
        return {number: (now - beat.replace(tzinfo=None)).total_seconds() for number, beat in rows}
    except Exception:
        return None


def _claim(study: optuna.Study, sweep: dict, work: tuple | None) -> None:
    """Queue the grid point a worker claimed, for its ``ask`` to take next: a failed trial's
    point again, with its grid id (as Optuna's ``RetryHeartbeatStaleTrialCallback`` does), or
    a new grid id; a queued point is in the queue already. (Only the claiming worker holds the
    lock between this and its ``ask``, so no other worker can take the point.)"""
    import optuna

    if work is None or work[0] == "queued":
        return
    kind, item = work
    if kind == "retry":
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=item.params,
            distributions=item.distributions,
            system_attrs={**item.system_attrs, "failed_trial": item.number},
        )
    else:
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            system_attrs={"grid_id": item, "search_space": grid_space(sweep)},
        )
    study.add_trial(trial)


# --- reading a study back ----------------------------------------------------------------------


def study_trials(study: optuna.Study, *, metric: str | None = None) -> list[dict]:
    """One dict per trial: ``number``, ``state`` (Optuna's name: COMPLETE, PRUNED, FAIL,
    RUNNING, WAITING), ``value``, each parameter by name, ``run_name``, ``epochs_run`` and
    ``error`` (a diverged trial's message). ``value`` is the study's objective, or the last
    epoch's ``metric`` when another metric is asked for."""
    own_metric = _study_metric(study)[0]
    from_history = None not in (metric, own_metric) and metric != own_metric
    rows = []
    for trial in study.get_trials(deepcopy=False):
        history = trial.user_attrs.get("history") or {}
        value = (history.get(metric) or [None])[-1] if from_history else trial.value
        rows.append(
            {
                "number": trial.number,
                "state": _state(trial),
                "value": value,
                **trial.params,
                "run_name": trial.user_attrs.get("run_name"),
                "epochs_run": len(next(iter(history.values()), [])) if history else None,
                "error": trial.user_attrs.get("error"),
            }
        )
    return rows


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> TrainConfig:
    """The whole configuration ``trial`` of a ``run_local`` study trained: the study's base
    options, the sweep's constants and the trial's values."""
    sweep = study.user_attrs.get("sweep")
    if sweep is None:
        raise SweepConfigError(f"study {study.study_name!r} was not made by fnn sweep")
    values = {}
    for name, spec in sweep["parameters"].items():
        if spec["distribution"] == "constant":
            values[name] = spec["value"]
        elif name in trial.params:
            choice = trial.params[name]
            categorical = spec["distribution"] == "categorical"
            values[name] = _decoded(spec["values"], choice) if categorical else choice
    return _train_config(study.user_attrs.get("base") or {}, values)


def _study_metric(study: optuna.Study) -> tuple[str | None, str]:
    """The metric name a study made by ``run_local`` optimises (None for another study) and its
    goal."""
    metric = (study.user_attrs.get("sweep") or {}).get("metric") or {}
    return metric.get("name"), metric.get("goal") or study.direction.name.lower()


def _load_study(name: str, storage: str) -> optuna.Study:
    import optuna

    check_driver(storage)
    if storage.startswith("sqlite:///") and storage != "sqlite:///:memory:":
        path = Path(storage.removeprefix("sqlite:///")).expanduser()
        if not path.exists():
            raise SweepConfigError(f"{name!r} is not a folder, and there is no storage {path}")
    names = optuna.study.get_all_study_names(database_url(storage))
    if name not in names:
        raise SweepConfigError(
            f"{name!r} is neither a folder of W&B runs nor a study in {shown(storage)} "
            f"(studies: {', '.join(names) or 'none'})"
        )
    return optuna.load_study(study_name=name, storage=database_url(storage))
