"""The Optuna study a local sweep lives in: created or resumed in its storage (with
heartbeats, so the trials of a killed process are failed), the sweep and base options it
remembers, which grid points are done or to run again, how many trials to run now; and its
trials read back (``study_trials``, ``trial_config``).

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fnn.sweep.config import SweepConfigError
from fnn.sweep.optuna_space import _decoded, grid_space, optuna_pruner, optuna_sampler
from fnn.sweep.training import STATES, _train_config
from fnn.train import TrainConfig

if TYPE_CHECKING:
    import optuna


# A trial whose process died stops sending heartbeats; after GRACE_SECONDS it is marked FAIL
# (by the next run_local on the same storage) and, in a grid, its point is run again.
HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 60


def _open_study(
    sweep: dict, base: dict, *, storage: Any, name: str, seed: int, say: Callable[[str], None]
) -> optuna.Study:
    """The study ``name`` in ``storage``, created or resumed, with the sampler and pruner of
    ``sweep``; the trials of dead processes (stale heartbeats) are marked failed."""
    import optuna

    study = optuna.create_study(
        storage=_storage(storage),
        study_name=name,
        load_if_exists=True,
        sampler=optuna_sampler(sweep, seed),
        pruner=optuna_pruner(sweep, base),
        direction=sweep["metric"]["goal"],
    )
    _remember(study, sweep, base, say)
    existing = len(study.get_trials(deepcopy=False))
    if existing and sweep["method"] != "grid":
        # A resumed RandomSampler(seed) would draw the first run's values again.
        study.sampler = optuna_sampler(sweep, _resume_seed(seed, existing))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def _resume_seed(seed: int, existing: int) -> int:
    """The sampler seed of an invocation that finds ``existing`` trials: reproducible, and
    different from the seeds of the earlier invocations."""
    return int(np.random.SeedSequence([seed, existing]).generate_state(1)[0])


def _storage(storage: Any) -> Any:
    """An RDB URL becomes an ``RDBStorage`` with heartbeats (so trials of a killed process are
    failed, and retried in a grid); a storage object is used as given."""
    import optuna

    if not isinstance(storage, str):
        return storage
    if storage.startswith("sqlite:///") and storage != "sqlite:///:memory:":
        Path(storage.removeprefix("sqlite:///")).expanduser().parent.mkdir(
            parents=True, exist_ok=True
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            storage, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
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


def _grid_status(study: optuna.Study, size: int) -> dict[str, list]:
    """Grid ids by status: done, running, queued (waiting), retry (failed, not final) and new
    (never started). A point's best status wins: done > running > queued > retry."""
    rank = {"done": 0, "running": 1, "queued": 2, "retry": 3}
    best: dict[int, tuple[str, optuna.trial.FrozenTrial]] = {}
    for trial in study.get_trials(deepcopy=False):
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


def _requeue(study: optuna.Study, failed: list) -> None:
    """Queue failed grid points again, with their grid id (as Optuna's
    ``RetryHeartbeatStaleTrialCallback`` does), so ``GridSampler`` gives the same point."""
    import optuna

    for trial in failed:
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                system_attrs={**trial.system_attrs, "failed_trial": trial.number},
            )
        )


def _counts(study: optuna.Study) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for trial in study.get_trials(deepcopy=False):
        counts[_state(trial)] += 1
    return counts


def _plan(study: optuna.Study, sweep: dict, count: int | None, ran: int) -> tuple[int, str, list]:
    """How many trials to run now, why not more, and the failed grid points to queue again
    (``count`` None: as many as the grid or ``run_cap`` leaves)."""
    counts = _counts(study)
    budget = math.inf if count is None else count - ran
    reason = f"count {count} reached"
    run_cap = sweep.get("run_cap")
    if run_cap is not None:
        left = run_cap - counts["COMPLETE"] - counts["PRUNED"] - counts["FAIL"] - counts["RUNNING"]
        if left < budget:
            budget, reason = left, f"run_cap {run_cap} reached"
    retry: list = []
    if sweep["method"] == "grid":
        size = math.prod(len(values) for values in grid_space(sweep).values())
        status = _grid_status(study, size)
        retry = status["retry"]
        work = len(status["new"]) + len(status["queued"]) + len(retry)
        if work < budget:
            running = f", {len(status['running'])} running" if status["running"] else ""
            budget = work
            reason = f"grid exhausted: {len(status['done'])} of {size} points done{running}"
        retry = retry[: max(0, int(budget) - len(status["queued"]))]
    return max(0, int(budget)), reason, retry


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

    if storage.startswith("sqlite:///") and storage != "sqlite:///:memory:":
        path = Path(storage.removeprefix("sqlite:///")).expanduser()
        if not path.exists():
            raise SweepConfigError(f"{name!r} is not a folder, and there is no storage {path}")
    names = optuna.study.get_all_study_names(storage)
    if name not in names:
        raise SweepConfigError(
            f"{name!r} is neither a folder of W&B runs nor a study in {storage} "
            f"(studies: {', '.join(names) or 'none'})"
        )
    return optuna.load_study(study_name=name, storage=storage)
