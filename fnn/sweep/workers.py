"""How the workers of a local sweep share one Optuna study: the study created or resumed
(``open_study``), each worker's part in it (``Worker``: its seed, the total its count aims at),
and what it does next (``next_step``: run a trial, wait for the trials of other workers, or
stop).

Workers coordinate through Optuna's public API:

- **Heartbeats.** The storage is an ``RDBStorage`` with ``heartbeat_interval``, ``grace_period``
  and a ``heartbeat_stale_trial_callback`` (``_requeue``): the public
  ``optuna.storages.fail_stale_trials`` fails the trial of a worker that died (its last
  heartbeat over ``GRACE_SECONDS`` old), and the callback queues its parameters again with
  ``study.enqueue_trial`` (with no retry limit), which the next ``ask`` takes.
- **Counts** are read from the study's own trials. The latest ``--count`` and the trial total it
  aims at are study user attributes, so workers started together share one total.
- **Grid points** are queued with ``study.enqueue_trial``, one at a time, just before the
  ``ask`` that takes them.

One guarantee needs more than Optuna gives: **no grid point runs twice, and no count or run_cap
is overshot, however many workers start at once.** (``enqueue_trial(skip_if_exists=True)`` and
``GridSampler`` both say they may duplicate under concurrency.) So a worker decides its next
trial, queues its point and asks for it while holding the storage's lock
(``optuna_storage.StorageLock``), and lets the lock go as soon as its trial has started (a
grid trial whose point turns out taken, such as a stale duplicate in the queue, is skipped).
On a database fnn cannot lock (MySQL, or a storage passed as an object) workers run unlocked:
a grid point may then run twice and a count be overshot by a trial per worker.

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fnn.sweep.config import SweepConfigError
from fnn.sweep.optuna_space import grid_points, optuna_pruner, optuna_sampler
from fnn.sweep.optuna_storage import (
    StorageLock,
    database_url,
    retry_creation,
    sqlite_path,
)

if TYPE_CHECKING:
    import optuna

# A running trial records a heartbeat every HEARTBEAT_SECONDS. Once its last one is over
# GRACE_SECONDS old (its worker was killed, or its machine lost), it is failed and run again.
HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 60
# The environment overrides both, in whole seconds, for worker processes that cannot be patched
# (the tests' subprocess workers): FNN_SWEEP_HEARTBEAT_SECONDS and FNN_SWEEP_GRACE_SECONDS.
HEARTBEAT_ENV, GRACE_ENV = "FNN_SWEEP_HEARTBEAT_SECONDS", "FNN_SWEEP_GRACE_SECONDS"
DEFINITION_KEYS = ("method", "parameters", "metric", "early_terminate")


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


# --- the study and this worker's part in it ----------------------------------------------------


@dataclass
class Worker:
    """This process's part in a shared study: the storage's ``lock``, its sampler ``seed``, the
    ``count`` it was asked for and ``target``, the trials taken (finished for good, or running)
    at which it stops (None: no count); ``joined``: the target is shared with other workers;
    ``storage``: the ``RDBStorage`` with heartbeats fnn made (None for a storage given as an
    object: then a dead worker's trial is never failed, so nobody waits for one); ``trial``:
    the trial it runs now; ``unnamed``: when it first saw each running trial without a worker
    (``_fail_orphans``); ``study_id``: the study's id in ``storage``; ``points``: a grid's
    points with their keys (``_key``), worked out once."""

    lock: StorageLock
    seed: int
    count: int | None
    target: int | None
    joined: bool
    storage: Any
    name: str
    study_id: int | None = None
    points: list = field(default_factory=list)
    trial: int = -1
    unnamed: dict = field(default_factory=dict)


def open_study(sweep, base, storage, name, seed, count, say, lock) -> tuple[optuna.Study, Worker]:
    """The study ``name`` in ``storage``, created or resumed under the storage's ``lock``
    (retried on a collision with a creator that does not take it), and this process's part in
    it."""
    import optuna

    with lock:  # an RDBStorage creates Optuna's tables
        shared = retry_creation(lambda: _storage(storage))
        study = retry_creation(lambda: optuna.create_study(
            storage=shared, study_name=name, load_if_exists=True,
            sampler=optuna_sampler(sweep, 0), pruner=optuna_pruner(sweep, base),
            direction=sweep["metric"]["goal"]))  # fmt: skip
        _remember(study, sweep, base, say)
        number = int(study.user_attrs.get("workers", 0))
        study.set_user_attr("workers", number + 1)
        trials = study.get_trials(deepcopy=False)
        worker_seed = _worker_seed(seed, number, len(trials))
        study.sampler = optuna_sampler(sweep, worker_seed)
        target, joined = _target(study, trials, count)
    name = f"{socket.gethostname()}:{os.getpid()}"
    rdb = shared if isinstance(storage, str) else None
    points = (
        [(_key(point), point) for point in grid_points(sweep)] if sweep["method"] == "grid" else []
    )
    study_id = rdb.get_study_id_from_name(study.study_name) if rdb is not None else None
    return study, Worker(lock, worker_seed, count, target, joined, rdb, name, study_id, points)


def _storage(storage: Any) -> Any:
    """An RDB URL becomes an ``RDBStorage`` with heartbeats, whose failed (stale) trials are
    queued again; a storage object is used as given."""
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
            database_url(storage), engine_kwargs=options, heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=_requeue,
        )  # fmt: skip


def _worker_seed(seed: int | None, number: int, existing: int) -> int:
    """The sampler seed of worker ``number`` (0 for a study's first), which finds ``existing``
    trials: fresh OS entropy without ``seed``; the seed itself for the first worker of a new
    study (a single run repeats as before); else one derived from all three, so workers started
    together, and resumed runs, do not redraw earlier values."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if number == 0 and existing == 0:
        return seed
    return int(np.random.SeedSequence([seed, number, existing]).generate_state(1)[0])


def _target(study: optuna.Study, trials: list, count: int | None) -> tuple[int | None, bool]:
    """The trials taken at which a worker asked for ``count`` stops, and whether it joins the
    total of earlier workers: a worker with the latest stored count, arriving before its total
    is finished, shares it (so workers started together run ``count`` in all, and an
    interrupted run started again finishes it); otherwise the trials taken so far plus
    ``count``."""
    if count is None:
        return None, False
    latest = study.user_attrs.get("count") or {}
    finished = sum(_final(trial) for trial in trials)
    if latest.get("count") == count and finished < latest.get("target", 0):
        return int(latest["target"]), True
    target = sum(_taken(trial) for trial in trials) + count
    if count:
        study.set_user_attr("count", {"count": count, "target": target})
    return target, False


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


def _definition(sweep: dict) -> dict:
    """What makes the trials of a study comparable (a new target, run_cap or name does not)."""
    definition = {key: sweep.get(key) for key in DEFINITION_KEYS}
    definition["metric"] = {key: sweep["metric"][key] for key in ("name", "goal")}
    return jsonable(definition)


def _remember(study: optuna.Study, sweep: dict, base: dict, say: Callable[[str], None]) -> None:
    """Store the sweep and base options in a new study; for an existing one, refuse a different
    search (its trials would not be comparable) and point out changed base options."""
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", jsonable(sweep))
        study.set_user_attr("base", jsonable(base))
        return
    old_definition, definition = _definition(stored), _definition(sweep)
    differs = [key for key in DEFINITION_KEYS if old_definition[key] != definition[key]]
    if differs:
        raise SweepConfigError(
            f"study {study.study_name!r} was created from a different sweep ({', '.join(differs)}"
            " changed); give it another name or storage"
        )
    old, new = study.user_attrs.get("base", {}), jsonable(base)
    changed = sorted(k for k in set(old) | set(new) if k != "data_dir" and old.get(k) != new.get(k))
    if changed:
        changes = ", ".join(f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in changed)
        say(f"note: base options differ from the study's first run: {changes}")


# --- what a worker does next -------------------------------------------------------------------


def _final(trial: optuna.trial.FrozenTrial) -> bool:
    """Finished for good: complete, pruned, or failed by divergence (which a rerun repeats).
    Other failures (Ctrl-C, a killed process, an exception, a skipped duplicate) are not."""
    state = trial.state.name
    return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and "error" in trial.user_attrs)


def _taken(trial: optuna.trial.FrozenTrial) -> bool:
    """Counted against ``count`` and ``run_cap``: finished for good, or running."""
    return _final(trial) or trial.state.name == "RUNNING"


def _key(params: dict) -> str:
    """A grid point as a comparable key, whatever the order of its names."""
    return json.dumps(params, sort_keys=True)


def _point(trial: optuna.trial.FrozenTrial) -> str | None:
    """A grid trial's point, as a key: the one it was queued with, else (a trial of an earlier
    fnn) its parameters. (A running trial's parameters are incomplete until it has drawn all.)"""
    params = trial.user_attrs.get("grid_point") or trial.params
    return _key(params) if params else None


def _grid(trials: list, points: list) -> dict[str, list]:
    """A grid's ``points`` (``Worker.points``) by status: ``done``, ``running``, ``queued``
    and ``left`` (to queue: never started, or failed other than by divergence)."""
    ranks, status = ("done", "running", "queued"), {}
    for trial in trials:
        key, state = _point(trial), trial.state.name
        found = "done" if _final(trial) else {"RUNNING": "running", "WAITING": "queued"}.get(state)
        if key and found and (key not in status or ranks.index(found) < ranks.index(status[key])):
            status[key] = found
    groups: dict[str, list] = {"done": [], "running": [], "queued": [], "left": []}
    for key, point in points:
        groups[status.get(key, "left")].append(point)
    return groups


def _budget(trials: list, sweep: dict, worker: Worker) -> tuple[int, str, dict | None]:
    """How many trials are left to start (by all workers), why not more, and a grid's points
    by status (``_grid``; None for another method)."""
    metric, target = sweep["metric"]["name"], sweep["metric"].get("target")
    maximize = sweep["metric"]["goal"] == "maximize"
    for trial in trials:
        if target is not None and trial.state.name == "COMPLETE" and trial.value is not None:
            if (trial.value >= target) if maximize else (trial.value <= target):
                return 0, f"trial {trial.number} reached the target {metric} {target}", None
    taken = sum(_taken(trial) for trial in trials)
    budget, reason = math.inf, ""
    if worker.target is not None:
        budget, reason = worker.target - taken, f"count {worker.count} reached"
    run_cap = sweep.get("run_cap")
    if run_cap is not None and run_cap - taken < budget:
        budget, reason = run_cap - taken, f"run_cap {run_cap} reached"
    grid = _grid(trials, worker.points) if sweep["method"] == "grid" else None
    if grid is not None and len(grid["queued"]) + len(grid["left"]) < budget:
        budget = len(grid["queued"]) + len(grid["left"])
        running = f", {len(grid['running'])} running" if grid["running"] else ""
        reason = f"grid exhausted: {len(grid['done'])} of {len(worker.points)} points done{running}"
    return max(0, int(budget)), reason, grid


def next_step(study: optuna.Study, sweep: dict, worker: Worker) -> tuple[str, int, str, list]:
    """``(action, budget, reason, running)``, taken under the storage's lock: ``run`` a trial
    (a grid's next point is queued first), ``wait`` for the ``running`` trials of other workers
    (if one of them dies, its trial is to run again), or ``stop``."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # and their parameters queued again
    trials = study.get_trials(deepcopy=False)
    if worker.storage is not None:
        trials = _fail_orphans(study, trials, worker)
    budget, reason, grid = _budget(trials, sweep, worker)
    if budget:
        if grid is not None and not grid["queued"]:
            point = grid["left"][0]
            study.enqueue_trial(point, user_attrs={"grid_point": point})
        return "run", budget, reason, []
    running = [trial for trial in trials if trial.state.name == "RUNNING"]
    others = [trial for trial in trials if trial.state.name != "RUNNING"]
    if running and worker.storage is not None and _budget(others, sweep, worker)[0]:
        return "wait", 0, reason, running
    return "stop", 0, reason, []


def _fail_orphans(study: optuna.Study, trials: list, worker: Worker) -> list:
    """``trials``, after failing and queueing again each running trial whose worker died
    between taking it and its first heartbeat (a few milliseconds, under the lock): it has no
    ``worker`` attribute a grace period after this worker first saw it (on this machine's
    clock: machines' clocks may differ). Optuna fails only trials that have a heartbeat."""
    import optuna

    now, grace = time.monotonic(), heartbeat_settings()[1]
    unnamed = {
        t.number for t in trials if t.state.name == "RUNNING" and "worker" not in t.user_attrs
    }
    worker.unnamed = {n: worker.unnamed.get(n, now) for n in unnamed}
    orphans = [number for number, seen in worker.unnamed.items() if now - seen > grace]
    for number in orphans:
        failed = study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        _requeue(study, failed)
    return study.get_trials(deepcopy=False) if orphans else trials


def _requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """The storage's ``heartbeat_stale_trial_callback``, also called for orphans: queue a failed
    trial's parameters again as a new trial, which records the trial it retries
    (``retry_of``). Unlike Optuna's ``RetryHeartbeatStaleTrialCallback``, it copies no other
    attribute: the dead worker's name, W&B run or error belong to the old trial."""
    params = trial.params or trial.user_attrs.get("grid_point")
    if not params:
        return  # it died before drawing its values: a new trial takes its place
    attrs = {"retry_of": trial.number}
    if "grid_point" in trial.user_attrs:
        attrs["grid_point"] = params
    study.enqueue_trial(params, user_attrs=attrs)


class Skipped(Exception):
    """A queued grid trial whose point has been taken meanwhile (or that has no point): it fails
    at once, counted neither as done nor as taken."""


def wanted(study: optuna.Study, number: int) -> bool:
    """Whether grid trial ``number`` (just taken from the queue) is its point's only trial
    finished for good or running."""
    trials = study.get_trials(deepcopy=False)
    key = _point(trials[number])
    return key is not None and not any(
        _taken(t) and _point(t) == key for t in trials if t.number != number
    )
