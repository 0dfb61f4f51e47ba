"""Hyperparameter sweeps from a standard W&B sweep YAML: on a W&B server (``run_wandb``) or
offline with Optuna (``run_local``: a resumable study in SQLite, one tracker run per trial), and
a report of a study or of a folder of W&B runs (``report``).

Optuna, PyYAML and wandb are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from fnn import data, tracking
from fnn.constraints import GOALS, is_integer, is_number
from fnn.train import FIELDS, ConfigError, TrainConfig, TrainingDiverged, fit, validate
from fnn.train import load_splits as load_training_splits

if TYPE_CHECKING:
    import optuna


class SweepConfigError(ValueError):
    """A sweep configuration (or sweep request) that cannot run; the message is one line naming
    the key or parameter and what is accepted."""


TOP_LEVEL_KEYS = (
    "program",
    "method",
    "parameters",
    "metric",
    "early_terminate",
    "command",
    "name",
    "description",
    "entity",
    "project",
    "run_cap",
    "controller",
)
METHODS = ("grid", "random", "bayes")
METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")  # logged every epoch
METRIC_KEYS = ("name", "goal", "target")
EARLY_TERMINATE_KEYS = ("type", "min_iter", "max_iter", "s", "eta")

# supported distribution -> (required keys, optional keys with their W&B defaults)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "categorical": (("values",), {}),
    "constant": (("value",), {}),
    "uniform": (("min", "max"), {}),
    "int_uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),  # W&B: exp(U(min, max)), min/max are exponents
    "log_uniform_values": (("min", "max"), {}),
}
# W&B distributions that Optuna cannot sample (unbounded, weighted or inverse)
UNSUPPORTED = (
    "categorical_w_probabilities",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
)

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")  # Optuna's TrialState names
SWEEPABLE: frozenset[str] = frozenset(FIELDS - {"extra", "data_dir", "source", "classes"})
SPLIT_FIELDS = ("dataset", "data_dir", "val_fraction", "train_subset", "seed", "dtype", "source",
                "classes", "resize")  # fmt: skip

# A trial whose process died stops sending heartbeats; after GRACE_SECONDS it is marked FAIL
# (by the next run_local on the same storage) and, in a grid, its point is run again.
HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 60
GRID_SEED = 0  # every process must map GridSampler's grid ids to the same points
INSPECT_TIMEOUT = 120.0  # seconds for one `wandb leet inspect`

_ANNOTATIONS = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
_KIND_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "tuple": "a list of integer widths",
}


# --- the sweep configuration -------------------------------------------------------------------


def load_config(path_or_dict: str | os.PathLike | Mapping) -> dict:
    """Read a W&B sweep YAML (or take its dict) and validate all of it before any trial runs.

    Returns the normalised configuration: every parameter spec carries an explicit
    ``distribution``, ``metric.goal`` defaults to W&B's ``minimize``, hyperband's ``eta`` to 3.
    Each candidate value (every ``values`` entry, ``value``, range ends; ``exp(min)`` and
    ``exp(max)`` for ``log_uniform``) must be accepted by ``train.validate``.
    Raises ``SweepConfigError`` naming the first problem.
    """
    raw = _read(path_or_dict) if not isinstance(path_or_dict, Mapping) else path_or_dict
    config = copy.deepcopy(dict(raw))
    unknown = [key for key in config if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise SweepConfigError(
            f"unknown top-level key {unknown[0]!r}; W&B sweep keys: {', '.join(TOP_LEVEL_KEYS)}"
        )
    method = config.get("method")
    if method not in METHODS:
        raise SweepConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    config["metric"] = _metric(config.get("metric"))
    parameters = config.get("parameters")
    if not isinstance(parameters, Mapping) or not parameters:
        raise SweepConfigError(
            "parameters: needs at least one parameter, e.g. {epochs: {value: 5}}"
        )
    config["parameters"] = {
        str(name): _parameter(str(name), spec, method) for name, spec in parameters.items()
    }
    if config.get("early_terminate") is not None:
        config["early_terminate"] = _early_terminate(config["early_terminate"])
    else:
        config.pop("early_terminate", None)
    run_cap = config.get("run_cap")
    if run_cap is not None and not (is_integer(run_cap) and run_cap >= 1):
        raise SweepConfigError(f"run_cap must be an integer >= 1; got {run_cap!r}")
    name = config.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise SweepConfigError(f"name must be a non-empty string; got {name!r}")
    return config


def _read(path: str | os.PathLike) -> dict:
    import yaml

    path = Path(path)
    try:
        loaded = yaml.load(path.read_text(), Loader=_yaml_loader())
    except (OSError, yaml.YAMLError) as error:
        raise SweepConfigError(f"{path}: cannot read it ({str(error).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise SweepConfigError(f"{path}: expected a W&B sweep configuration (a mapping)")
    return loaded


def _yaml_loader():
    """``yaml.SafeLoader`` that also reads ``1e-3`` as a float (YAML 1.1 needs ``1.0e-3``;
    plain PyYAML would hand the string '1e-3' to the learning rate)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def _metric(metric: Any) -> dict:
    if not isinstance(metric, Mapping) or "name" not in metric:
        raise SweepConfigError(
            f"metric: needs a name, one of {', '.join(METRICS)} (e.g. "
            "{name: val_accuracy, goal: maximize}); got " + repr(metric)
        )
    extra = [key for key in metric if key not in METRIC_KEYS]
    if extra:
        raise SweepConfigError(
            f"metric: key {extra[0]!r} is not supported; accepted: {', '.join(METRIC_KEYS)}"
        )
    if metric["name"] not in METRICS:
        raise SweepConfigError(
            f"metric.name must be one fnn logs every epoch: {', '.join(METRICS)}; "
            f"got {metric['name']!r}"
        )
    goal = metric.get("goal", "minimize")  # W&B's default
    if goal not in GOALS.options:
        raise SweepConfigError(f"metric.goal must be minimize or maximize; got {goal!r}")
    if "goal" not in metric and metric["name"].endswith("accuracy"):
        warnings.warn(
            f"metric.goal is not given, so {metric['name']} is minimized (W&B's default); "
            "add `goal: maximize`",
            stacklevel=3,
        )
    target = metric.get("target")
    if target is not None and not (is_number(target) and math.isfinite(target)):
        raise SweepConfigError(f"metric.target must be a number; got {target!r}")
    normalised = {"name": metric["name"], "goal": goal}
    if target is not None:
        normalised["target"] = target
    return normalised


def _early_terminate(spec: Any) -> dict:
    if not isinstance(spec, Mapping) or spec.get("type") != "hyperband":
        raise SweepConfigError(
            "early_terminate: only {type: hyperband, min_iter: N, eta: 3} "
            f"(or max_iter and s instead of min_iter) is supported; got {spec!r}"
        )
    extra = [key for key in spec if key not in EARLY_TERMINATE_KEYS]
    if extra:
        raise SweepConfigError(
            f"early_terminate: key {extra[0]!r} is not supported; "
            f"accepted: {', '.join(EARLY_TERMINATE_KEYS)}"
        )
    eta = spec.get("eta", 3)
    if not (is_integer(eta) and eta >= 2):
        raise SweepConfigError(f"early_terminate.eta must be an integer >= 2; got {eta!r}")
    if "min_iter" in spec:
        keys = ("min_iter",)
    elif "max_iter" in spec and "s" in spec:
        keys = ("max_iter", "s")
    else:
        raise SweepConfigError("early_terminate: hyperband needs min_iter, or max_iter and s")
    for key in keys:
        if not (is_integer(spec[key]) and spec[key] >= 1):
            raise SweepConfigError(
                f"early_terminate.{key} must be an integer >= 1; got {spec[key]!r}"
            )
    return {"type": "hyperband", **{key: spec[key] for key in keys}, "eta": eta}


def _implied_distribution(name: str, spec: Mapping) -> str:
    """W&B's rules when ``distribution`` is absent."""
    if "values" in spec:
        return "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        both_ints = is_integer(spec["min"]) and is_integer(spec["max"])
        return "int_uniform" if both_ints else "uniform"
    raise SweepConfigError(
        f"parameter {name}: needs `values: [...]`, `value: x`, or `min` and `max`; got {dict(spec)}"
    )


def _distribution(name: str, spec: Any, method: str) -> str:
    """The distribution of parameter ``name``: given, or implied as W&B does; one the local
    backend can sample, and categorical or constant in a grid."""
    if name not in SWEEPABLE:
        raise SweepConfigError(
            f"parameters: {name!r} is not a sweepable training option; sweepable: "
            f"{', '.join(sorted(SWEEPABLE))}"
        )
    if not isinstance(spec, Mapping):
        raise SweepConfigError(
            f"parameter {name}: expected a mapping such as {{values: [...]}}, {{value: x}} "
            f"or {{min: a, max: b}}; got {spec!r}"
        )
    if "parameters" in spec:
        raise SweepConfigError(f"parameter {name}: nested parameters are not supported")
    distribution = spec.get("distribution") or _implied_distribution(name, spec)
    if distribution in UNSUPPORTED:
        raise SweepConfigError(
            f"parameter {name}: distribution {distribution} is not supported by the local "
            f"backend; use one of {', '.join(DISTRIBUTIONS)}"
        )
    if not isinstance(distribution, str) or distribution not in DISTRIBUTIONS:
        raise SweepConfigError(
            f"parameter {name}: unknown distribution {distribution!r}; "
            f"use one of {', '.join(DISTRIBUTIONS)}"
        )
    if method == "grid" and distribution not in ("categorical", "constant"):
        raise SweepConfigError(
            f"parameter {name}: method grid needs `values` or `value` for every parameter; "
            f"got distribution {distribution}"
        )
    return distribution


def _parameter(name: str, spec: Any, method: str) -> dict:
    """The normalised spec ``{distribution, ...}`` of parameter ``name``, every candidate
    value checked against ``train.validate``."""
    distribution = _distribution(name, spec, method)
    required, optional = DISTRIBUTIONS[distribution]
    extra = [key for key in spec if key not in {"distribution", *required, *optional}]
    if extra:
        raise SweepConfigError(
            f"parameter {name}: key {extra[0]!r} does not belong to distribution "
            f"{distribution} (it takes {', '.join([*required, *optional])})"
        )
    missing = [key for key in required if key not in spec]
    if missing:
        raise SweepConfigError(
            f"parameter {name}: distribution {distribution} needs {' and '.join(required)}"
        )
    normalised = {"distribution": distribution, **optional}
    if distribution == "q_uniform" and _kind(name) == "int":
        normalised["q"] = 1
    normalised.update({key: spec[key] for key in (*required, *optional) if key in spec})
    for value, shown in _candidates(name, normalised):
        _check_value(name, value, shown)
    return normalised


def _candidates(name: str, spec: dict) -> list[tuple[Any, str]]:
    """The values to check, each with how the error message shows it."""
    distribution = spec["distribution"]
    if distribution == "constant":
        return [(spec["value"], repr(spec["value"]))]
    if distribution == "categorical":
        if not isinstance(spec["values"], list | tuple) or not spec["values"]:
            raise SweepConfigError(
                f"parameter {name}: values must be a non-empty list; got {spec['values']!r}"
            )
        return [(value, repr(value)) for value in spec["values"]]
    low, high = spec["min"], spec["max"]
    for key in ("min", "max", "q") if distribution == "q_uniform" else ("min", "max"):
        if not (is_number(spec[key]) and math.isfinite(spec[key])):
            raise SweepConfigError(f"parameter {name}: {key} must be a number; got {spec[key]!r}")
    if not low < high:
        raise SweepConfigError(f"parameter {name}: min must be below max; got {low} and {high}")
    if distribution == "int_uniform" and not (is_integer(low) and is_integer(high)):
        raise SweepConfigError(f"parameter {name}: int_uniform needs integer min and max")
    if distribution == "q_uniform" and not spec["q"] > 0:
        raise SweepConfigError(f"parameter {name}: q must be > 0; got {spec['q']}")
    if distribution == "q_uniform" and _kind(name) == "int" and not is_integer(spec["q"]):
        raise SweepConfigError(f"parameter {name}: takes integers, so q must be an integer")
    if distribution == "log_uniform_values" and low <= 0:
        raise SweepConfigError(
            f"parameter {name}: log_uniform_values needs min > 0; got {low} "
            "(log_uniform takes natural-log exponents instead)"
        )
    if distribution == "log_uniform":
        return [(math.exp(end), f"exp({end}) = {math.exp(end):.4g}") for end in (low, high)]
    return [(low, repr(low)), (high, repr(high))]


def _kind(name: str) -> str:
    """``int``, ``float``, ``str`` or ``tuple`` (hidden_sizes): the type of a TrainConfig field."""
    return _ANNOTATIONS[name].split("[")[0].split(" |")[0]


def _as_field(name: str, value: Any) -> Any:
    return tuple(value) if name == "hidden_sizes" and isinstance(value, list) else value


def _check_value(name: str, value: Any, shown: str) -> None:
    kind = _kind(name)
    optional = "None" in _ANNOTATIONS[name]
    if value is None:
        ok = optional
    elif kind == "int":
        ok = is_integer(value)
    elif kind == "float":
        ok = is_number(value)
    elif kind == "str":
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, list | tuple) and all(is_integer(width) for width in value)
    if not ok:
        raise SweepConfigError(
            f"parameter {name}: value {shown} is not {_KIND_WORDS[kind]}"
            + (" (or null)" if optional else "")
        )
    try:
        validate(TrainConfig(**{name: _as_field(name, value)}))
    except ConfigError as error:
        reason = str(error).removeprefix(f"--{error.option} ").split("; got")[0]
        raise SweepConfigError(
            f"parameter {name}: value {shown} is invalid; {name} {reason}"
        ) from None


def wandb_config(config: dict) -> dict:
    """The dict for ``wandb.sweep``: the validated configuration in W&B's plainest forms
    (``values``, ``value``, or ``distribution`` with ``min``/``max``)."""
    config = copy.deepcopy(config)
    for name, spec in config["parameters"].items():
        distribution = spec["distribution"]
        if distribution == "categorical":
            config["parameters"][name] = {"values": spec["values"]}
        elif distribution == "constant":
            config["parameters"][name] = {"value": spec["value"]}
    return config


# --- training one configuration ----------------------------------------------------------------

_SPLITS: dict[tuple, data.Splits] = {}


def load_splits(config: TrainConfig, *, progress: bool = False) -> data.Splits:
    """The splits of ``config``, loaded once per process per (dataset, data_dir, val_fraction,
    train_subset, seed, dtype, source): trials that share them share the arrays."""
    key = tuple(getattr(config, name) for name in SPLIT_FIELDS)
    if key not in _SPLITS:
        _SPLITS[key] = load_training_splits(config, progress=progress)
    return _SPLITS[key]


def _check_base(base: Mapping | None) -> dict:
    """``base`` (TrainConfig fields the sweep does not set) as a dict; a bad value raises
    ``ConfigError`` naming the option, as ``fnn train`` does."""
    base = dict(base or {})
    unknown = sorted(set(base) - FIELDS)
    if unknown:
        raise SweepConfigError(
            f"base configuration: unknown option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(FIELDS))}"
        )
    _train_config(base, {})
    return base


def _train_config(base: Mapping, values: Mapping) -> TrainConfig:
    merged = {name: _as_field(name, value) for name, value in {**base, **values}.items()}
    return validate(TrainConfig(**merged))


def _new_history() -> dict[str, list[float]]:
    return {name: [] for name in METRICS}


def _train(
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


def _summary(history: dict[str, list], metric: str, state: str, **extra: Any) -> dict[str, Any]:
    """The run summary of a trial: ``metric`` of the last epoch, the best val_accuracy, how many
    epochs ran and how the trial ended (``sweep_state``: COMPLETE, PRUNED or FAIL)."""
    summary: dict[str, Any] = {"sweep_state": state, "epochs_run": len(history[metric]), **extra}
    if history[metric]:
        summary[metric] = history[metric][-1]
        summary["best_val_accuracy"] = max(history["val_accuracy"])
    return summary


def agent_function(
    base: dict,
    metric: str,
    *,
    progress: bool = False,
    say: Callable[[str], None] = tracking.print_error,
) -> Callable[[], None]:
    """The function ``wandb.agent`` calls once per run: it reads the sweep's values from
    ``wandb.init().config``, trains ``base`` updated with them and records the run."""
    base = _check_base(base)
    if metric not in METRICS:
        raise SweepConfigError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")

    def run_once() -> None:
        import wandb

        run = wandb.init()
        values = {key: value for key, value in dict(run.config).items() if key[0] != "_"}
        unknown = sorted(set(values) - SWEEPABLE)
        try:
            if unknown:
                raise SweepConfigError(
                    f"sweep parameter(s) {', '.join(unknown)} are not training options"
                )
            config = _train_config(base, values)
        except (SweepConfigError, ConfigError) as error:
            say(f"skipping run {run.id}: {error}")
            run.finish(exit_code=1)
            return
        run.name = tracking.run_name(config.to_dict())
        run.config.update(config.to_dict(), allow_val_change=True)
        tracker = tracking.WandbTracker(run, warn=say)
        history = _new_history()
        try:
            _train(config, tracker, history, progress=progress)
        except TrainingDiverged as error:
            say(f"run {run.name}: {error}")
            tracker.summary(_summary(history, metric, "FAIL", error=str(error)))
            run.finish(exit_code=1)
            return
        tracker.summary(_summary(history, metric, "COMPLETE"))
        tracker.finish()

    return run_once


def run_wandb(
    config: str | os.PathLike | dict | None,
    *,
    count: int | None,
    base: dict,
    project: str | None = None,
    entity: str | None = None,
    sweep_id: str | None = None,
    progress: bool = False,
) -> str:
    """Create a sweep on the W&B server (or, given ``sweep_id``, join one; ``config`` may then
    be None) and run a local agent that trains ``count`` runs (None: until the server says the
    sweep is done). Returns the sweep id. W&B sweeps need a server: without one this raises
    ``SweepConfigError`` pointing at ``--backend local``. ``project``/``entity`` default to
    the sweep file's, then "fnn"."""
    import wandb

    if config is None and sweep_id is None:
        raise SweepConfigError("a W&B sweep needs a sweep configuration, or the id of one to join")
    sweep = load_config(config) if config is not None else {}
    metric = sweep["metric"]["name"] if sweep else "val_accuracy"  # the server knows its own
    base = _check_base(base)
    project = project or sweep.get("project") or "fnn"
    entity = entity or sweep.get("entity")
    try:
        if sweep_id is None:
            sweep_id = wandb.sweep(wandb_config(sweep), project=project, entity=entity)
        wandb.agent(
            sweep_id,
            function=agent_function(base, metric, progress=progress),
            count=count,
            project=project,
            entity=entity,
        )
    except (wandb.errors.UsageError, wandb.errors.CommError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SweepConfigError(
            f"W&B sweeps need a W&B server ({first_line}); run `wandb login`, "
            "or use the offline backend (--backend local)"
        ) from None
    return sweep_id


# --- Optuna: the local backend -----------------------------------------------------------------


def _choices(values: list) -> list:
    """Optuna categorical choices: lists (``hidden_sizes``) are stored as JSON strings."""
    if all(v is None or isinstance(v, str | int | float) for v in values):
        return list(values)
    return [json.dumps(v) for v in values]


def _decoded(values: list, choice: Any) -> Any:
    return choice if _choices(values) == list(values) else json.loads(choice)


def grid_space(config: dict) -> dict[str, list]:
    """The ``GridSampler`` search space: the choices of every non-constant parameter."""
    return {
        name: _choices(spec["values"])
        for name, spec in config["parameters"].items()
        if spec["distribution"] == "categorical"
    }


def optuna_sampler(config: dict, seed: int = 0) -> optuna.samplers.BaseSampler:
    """grid -> ``GridSampler`` (fixed seed, so processes agree on the grid order),
    random -> ``RandomSampler(seed)``, bayes -> ``TPESampler(seed=seed)``."""
    import optuna

    method = config["method"]
    if method == "grid":
        return optuna.samplers.GridSampler(grid_space(config), seed=GRID_SEED)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _constant_epochs(config: dict, base: Mapping) -> int | None:
    spec = config["parameters"].get("epochs")
    if spec is None:
        return base.get("epochs", TrainConfig().epochs)
    if spec["distribution"] == "constant":
        return spec["value"]
    if spec["distribution"] == "categorical" and len(set(spec["values"])) == 1:
        return spec["values"][0]
    return None


def optuna_pruner(config: dict, base: Mapping | None = None) -> optuna.pruners.BasePruner:
    """hyperband -> ``HyperbandPruner(min_resource=min_iter, reduction_factor=eta,
    max_resource=epochs if fixed else 'auto')``, counting epochs; no early_terminate ->
    ``NopPruner``. W&B's ``max_iter, s`` form becomes ``min_resource = max_iter // eta**s``."""
    import optuna

    early = config.get("early_terminate")
    if not early:
        return optuna.pruners.NopPruner()
    epochs = _constant_epochs(config, base or {})
    eta = early["eta"]
    if "min_iter" in early:
        min_resource, max_resource = early["min_iter"], epochs or "auto"
    else:
        min_resource, max_resource = (
            max(1, early["max_iter"] // eta ** early["s"]),
            early["max_iter"],
        )
    if epochs is not None and min_resource > epochs:
        raise SweepConfigError(
            f"early_terminate: min_iter {min_resource} is more than the {epochs} epochs each "
            "trial trains, so nothing could be pruned"
        )
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource, max_resource=max_resource, reduction_factor=eta
    )


def _suggest(trial: optuna.Trial, name: str, spec: dict) -> Any:
    """The value of ``name`` for ``trial``: W&B's distribution as Optuna's suggest call."""
    distribution = spec["distribution"]
    if distribution == "constant":
        return spec["value"]
    if distribution == "categorical":
        choice = trial.suggest_categorical(name, _choices(spec["values"]))
        return _decoded(spec["values"], choice)
    low, high = spec["min"], spec["max"]
    if distribution == "log_uniform":
        return trial.suggest_float(name, math.exp(low), math.exp(high), log=True)
    log = distribution == "log_uniform_values"
    step = spec["q"] if distribution == "q_uniform" else None
    if _kind(name) == "int":
        return trial.suggest_int(name, low, high, step=step or 1, log=log)
    return trial.suggest_float(name, low, high, step=step, log=log)


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
    if study_name is None and not isinstance(config, Mapping):
        study_name = sweep.get("name") or Path(config).stem
    study_name = study_name or sweep.get("name")
    if not study_name:
        raise SweepConfigError("the study needs a name: set `name:` in the sweep or pass one")
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
    base = _check_base(base)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    try:
        study = optuna.create_study(
            storage=_storage(storage),
            study_name=study_name,
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


def _resume_seed(seed: int, existing: int) -> int:
    """The sampler seed of an invocation that finds ``existing`` trials: reproducible, and
    different from the seeds of the earlier invocations."""
    return int(np.random.SeedSequence([seed, existing]).generate_state(1)[0])


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


# --- reading results back ----------------------------------------------------------------------


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


def _run_dirs(folder: Path) -> list[Path]:
    runs = [
        path
        for path in sorted(folder.iterdir())
        if path.is_dir() and not path.is_symlink() and re.match(r"(offline-)?run-", path.name)
    ]
    if not runs and (folder / "wandb").is_dir():
        return _run_dirs(folder / "wandb")
    if not runs and list(folder.glob("*.wandb")):
        return [folder]
    return runs


def inspect_run(run_dir: str | os.PathLike) -> dict | None:
    """``wandb leet inspect --summary --json`` of one run directory (name, config, summary,
    state, ...), or None when it cannot be read."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json"]
    try:
        result = subprocess.run(
            [*command, str(run_dir)],
            capture_output=True,
            text=True,
            timeout=INSPECT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        info, _ = json.JSONDecoder().raw_decode(result.stdout.lstrip())
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _run_state(info: dict) -> str:
    summary = info.get("summary") or {}
    if summary.get("sweep_state"):
        return summary["sweep_state"]
    state = info.get("state")
    if state == "finished" and not info.get("exit_code"):
        return "COMPLETE"
    return "RUNNING" if state == "running" else "FAIL"


def wandb_trials(folder: str | os.PathLike, *, metric: str = "val_accuracy") -> list[dict]:
    """The runs in a W&B folder (``offline-run-*``/``run-*``, e.g. ``./wandb``) as trial dicts
    like ``study_trials``, numbered in start order, with every training option of the config
    and ``sweep``, the study name of a ``run_local`` trial."""
    runs = _run_dirs(Path(folder))
    with ThreadPoolExecutor(max_workers=4) as pool:
        infos = [info for info in pool.map(inspect_run, runs) if info is not None]
    infos.sort(key=lambda info: str(info.get("start_time", "")))
    rows = []
    for number, info in enumerate(infos):
        summary, config = info.get("summary") or {}, info.get("config") or {}
        value = summary.get(metric)
        rows.append(
            {
                "number": number,
                "state": _run_state(info),
                "value": float(value) if is_number(value) else None,
                **{name: config[name] for name in sorted(SWEEPABLE) if name in config},
                "run_name": info.get("name"),
                "epochs_run": summary.get("epochs_run", summary.get("epoch")),
                "error": summary.get("error"),
                "sweep": summary.get("sweep"),  # the study of a run_local trial
            }
        )
    return rows


def _varying(trials: list[dict], names: list[str]) -> list[str]:
    """The names that take more than one value across ``trials``; ``hidden_sizes`` only when
    the widths are not already told by ``num_layers`` and ``hidden_size``."""
    varying = [
        name
        for name in names
        if len({json.dumps(trial.get(name), sort_keys=True) for trial in trials}) > 1
    ]
    if "hidden_sizes" in varying and {"num_layers", "hidden_size"} & set(varying):
        varying.remove("hidden_sizes")
    return varying


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's rho needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    _, inverse = np.unique(values, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(x, y)[0, 1]))


def correlation_importance(trials: list[dict], params: list[str]) -> dict[str, float]:
    """Per parameter over the complete trials with a value: |Spearman rho| with the metric for
    numeric parameters, the correlation ratio eta (Pearson r between the metric and its mean
    per category) for the others. Each in [0, 1]; not normalised."""
    done = _complete(trials)
    y = np.array([t["value"] for t in done], dtype=np.float64)
    importances = {}
    for name in params:
        column = [t.get(name) for t in done]
        if all(is_number(v) for v in column):
            x = np.array(column, dtype=np.float64)
            importances[name] = _correlation(_ranks(x), _ranks(y))
            continue
        keys = [json.dumps(v, sort_keys=True) for v in column]
        means = {key: y[[k == key for k in keys]].mean() for key in set(keys)}
        importances[name] = _correlation(np.array([means[k] for k in keys]), y)
    return dict(sorted(importances.items(), key=lambda item: -item[1]))


def _optuna_importance(
    study: optuna.Study, params: list[str], metric: str | None
) -> tuple[dict[str, float], str]:
    import optuna

    own = _study_metric(study)[0]
    target = None
    if None not in (metric, own) and metric != own:

        def target(trial):
            return ((trial.user_attrs.get("history") or {}).get(metric) or [math.nan])[-1]

    try:
        import sklearn  # noqa: F401  (fANOVA's random forest)

        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        method = "fANOVA (Optuna's FanovaImportanceEvaluator, seed 0)"
    except ImportError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        method = "PED-ANOVA (Optuna's default evaluator; fANOVA needs scikit-learn)"
    importances = optuna.importance.get_param_importances(
        study, evaluator=evaluator, params=params, target=target
    )
    return dict(importances), f"{method}, normalised to sum 1"


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


def report(
    source: str | os.PathLike,
    *,
    out: str | os.PathLike,
    storage: str = "sqlite:///sweeps.db",
    metric: str | None = None,
    goal: str | None = None,
    top: int = 10,
) -> dict[str, Path]:
    """Summarise a sweep into ``out``: ``parallel_coordinates.png``, ``metric_by_run.png``,
    ``importance.png`` and ``importance.csv``, ``summary.md`` (top ``top`` complete trials,
    state counts, importances) and ``index.html`` (the same, with the figures).

    ``source`` is a folder of W&B runs (e.g. ``./wandb``, read with ``wandb leet inspect``) or
    the name of an Optuna study in ``storage``. ``metric`` and ``goal`` default to the study's
    (for W&B runs: ``val_accuracy``; goal minimize for losses, else maximize).
    """
    if metric is not None and metric not in METRICS:
        raise SweepConfigError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if goal is not None and goal not in GOALS.options:
        raise SweepConfigError(f"goal must be minimize or maximize; got {goal!r}")
    if Path(source).is_dir():
        metric = metric or "val_accuracy"
        trials = wandb_trials(source, metric=metric)
        if not trials:
            raise SweepConfigError(f"{source}: no readable W&B runs (offline-run-*/run-*) in it")
        params = _varying(trials, sorted(SWEEPABLE))
        studies = {trial["sweep"] for trial in trials}
        name = studies.pop() if len(studies) == 1 and None not in studies else Path(source).name
        importances, method = _fallback_importance(trials, params)
        origin = f"W&B runs in {source}"
    else:
        study = _load_study(str(source), storage)
        own_metric, own_goal = _study_metric(study)
        if metric is None or metric == own_metric:
            goal = goal or own_goal
        metric = metric or own_metric or "value"
        trials = study_trials(study, metric=metric)
        if not trials:
            raise SweepConfigError(f"study {source!r} has no trials yet")
        params = _study_params(study, trials)
        name = study.study_name
        importances, method = _study_importance(study, trials, params, metric)
        origin = f"Optuna study {name!r} in {storage}"
    goal = goal or ("minimize" if metric.endswith("loss") else "maximize")
    return _write_report(
        Path(out),
        name=name,
        origin=origin,
        trials=trials,
        params=params,
        metric=metric,
        goal=goal,
        importances=importances,
        method=method,
        top=top,
    )


def _study_params(study: optuna.Study, trials: list[dict]) -> list[str]:
    """The swept (non-constant) parameters of the study that vary across its trials."""
    parameters = (study.user_attrs.get("sweep") or {}).get("parameters") or {}
    swept = [name for name, spec in parameters.items() if spec["distribution"] != "constant"]
    swept = swept or sorted(
        {key for trial in study.get_trials(deepcopy=False) for key in trial.params}
    )
    return _varying(trials, swept) or swept


def _study_importance(
    study: optuna.Study, trials: list[dict], params: list[str], metric: str
) -> tuple[dict[str, float], str]:
    """Optuna's importances with 2 or more complete trials and a varying parameter; otherwise,
    or if the evaluator fails on so few trials, the correlations of ``correlation_importance``."""
    complete = _complete(trials)
    varying = _varying(complete, params)
    if len(complete) >= 2 and varying:
        try:
            return _optuna_importance(study, varying, metric)
        except (ValueError, RuntimeError, ZeroDivisionError):
            pass
    return _fallback_importance(trials, params)


def _fallback_importance(trials: list[dict], params: list[str]) -> tuple[dict[str, float], str]:
    complete = _complete(trials)
    varying = _varying(complete, params)
    if len(complete) < 3 or not varying:
        return {}, f"not computed: {len(complete)} complete trials, it needs 3 that vary"
    return correlation_importance(complete, varying), (
        f"|Spearman rho| with the metric for numeric parameters, correlation ratio eta for "
        f"categorical ones, over {len(complete)} complete trials (each in [0, 1], not normalised)"
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "-".join(map(str, value))
    return str(value)


def _complete(trials: list[dict]) -> list[dict]:
    return [t for t in trials if t["state"] == "COMPLETE" and is_number(t["value"])]


FIGURES = {  # key -> (file, caption)
    "parallel_coordinates": ("parallel_coordinates.png", "Parallel coordinates"),
    "metric_by_run": ("metric_by_run.png", "Metric by trial"),
    "importance": ("importance.png", "Hyperparameter importance"),
}


class _Page(NamedTuple):
    """What summary.md and index.html both say."""

    title: str
    facts: list[str]
    ranked_title: str
    ranked: tuple[list[str], list[list[str]]]  # header, rows
    method: str
    importances: list[list[str]]


def _page(name, origin, trials, params, metric, goal, importances, method, top) -> _Page:
    ranked = sorted(_complete(trials), key=lambda t: t["value"], reverse=goal == "maximize")
    rows = [
        [str(rank), str(t["number"]), f"{t['value']:.4f}", *(_cell(t.get(p)) for p in params)]
        + [_cell(t.get("run_name"))]
        for rank, t in enumerate(ranked[:top], start=1)
    ]
    counts = ", ".join(
        f"{n} {state.lower()}"
        for state in STATES
        if (n := sum(t["state"] == state for t in trials))
    )
    return _Page(
        title=f"Sweep {name}",
        facts=[
            f"Source: {origin}",
            f"Metric: {metric} ({goal}); trials: {len(trials)} ({counts})",
        ],
        ranked_title=f"Top {len(rows)} complete trials by {metric}",
        ranked=(["rank", "trial", metric, *params, "run"], rows),
        method=method,
        importances=[[param, f"{value:.4f}"] for param, value in importances.items()],
    )


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def _markdown(page: _Page) -> str:
    lines = [f"# {page.title}", "", *(f"- {fact}" for fact in page.facts), ""]
    lines += [f"## {page.ranked_title}", ""]
    lines += [_markdown_table(*page.ranked) if page.ranked[1] else "No complete trial yet.", ""]
    lines += ["## Parameter importance", "", f"Method: {page.method}.", ""]
    if page.importances:
        lines += [_markdown_table(["parameter", "importance"], page.importances), ""]
    lines += ["## Figures", ""]
    lines += [f"![{caption}]({file})" for file, caption in FIGURES.values()]
    return "\n".join(lines) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


def _html(page: _Page) -> str:
    body = [f"<h1>{html.escape(page.title)}</h1>", "<ul>"]
    body += [f"<li>{html.escape(fact)}</li>" for fact in page.facts] + ["</ul>"]
    body += [f"<h2>{html.escape(page.ranked_title)}</h2>"]
    body += [_html_table(*page.ranked) if page.ranked[1] else "<p>No complete trial yet.</p>"]
    body += ["<h2>Parameter importance</h2>", f"<p>Method: {html.escape(page.method)}.</p>"]
    if page.importances:
        body += [_html_table(["parameter", "importance"], page.importances)]
    body += ["<h2>Figures</h2>"]
    body += [
        f'<figure><img src="{file}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
        for file, caption in FIGURES.values()
    ]
    return HTML_PAGE.format(title=html.escape(page.title), body="\n".join(body))


def _figures(
    out: Path,
    name: str,
    trials: list[dict],
    params: list[str],
    metric: str,
    goal: str,
    importances: dict[str, float],
) -> dict[str, Path]:
    """The three PNGs. Only complete trials carry a metric: a pruned trial's value is from
    fewer epochs, so it is drawn as grey (missing) rather than ranked with the others."""
    from fnn import plots

    scores = [t["value"] if t["state"] == "COMPLETE" else None for t in trials]
    rows = []
    for trial, score in zip(trials, scores, strict=True):
        values = {p: trial.get(p) for p in params}  # numbers stay numbers for numeric axes
        row = {p: v if is_number(v) else _cell(v) or None for p, v in values.items()}
        rows.append({**row, metric: score})
    files = {key: out / file for key, (file, _) in FIGURES.items()}
    return {
        "parallel_coordinates": plots.parallel_coordinates(
            rows,
            params,
            metric,
            files["parallel_coordinates"],
            title=f"Sweep {name}: {metric} by hyperparameter",
            goal=goal,
        ),
        "metric_by_run": plots.metric_by_run(
            scores,
            files["metric_by_run"],
            metric=metric,
            goal=goal,
            title=f"Sweep {name}: {metric} by trial",
        ),
        "importance": plots.importance_bar(
            importances, files["importance"], title=f"Sweep {name}: hyperparameter importance"
        ),
    }


def _write_report(
    out: Path,
    *,
    name: str,
    origin: str,
    trials: list[dict],
    params: list[str],
    metric: str,
    goal: str,
    importances: dict[str, float],
    method: str,
    top: int,
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = _figures(out, name, trials, params, metric, goal, importances)
    paths["importance_table"] = out / "importance.csv"
    paths["importance_table"].write_text(
        "parameter,importance\n" + "".join(f"{k},{v!r}\n" for k, v in importances.items())
    )
    page = _page(name, origin, trials, params, metric, goal, importances, method, top)
    paths["summary"] = out / "summary.md"
    paths["summary"].write_text(_markdown(page))
    paths["index"] = out / "index.html"
    paths["index"].write_text(_html(page))
    return paths
