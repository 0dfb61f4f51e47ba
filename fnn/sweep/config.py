"""The sweep definition: a standard W&B sweep YAML (or its dict) read, normalised and checked
in full before any trial runs (``load_config``); every error is a one-line
``SweepConfigError``.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

from fnn.constraints import GOALS, ConstraintError, is_integer, is_number
from fnn.train import FIELDS, constraint, hyperparameter_names, read_yaml


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
# TrainConfig fields a sweep does not set: where the data come from, and the free-form dicts
NOT_SWEPT = frozenset({"extra", "hparams", "data_dir", "source", "classes"})


def sweepable() -> frozenset[str]:
    """The names a sweep may set: TrainConfig's settings (but where the data come from) and
    the hyperparameters of every registered optimizer (read now, so an optimizer added to the
    registry is sweepable with no other change)."""
    return frozenset(FIELDS - NOT_SWEPT) | frozenset(hyperparameter_names())


def __getattr__(name: str):
    if name == "SWEEPABLE":  # the set as it is now (see ``sweepable``)
        return sweepable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    try:
        loaded = read_yaml(path)
    except ValueError as error:
        raise SweepConfigError(f"{path}: {error}") from None
    if not isinstance(loaded, dict):
        raise SweepConfigError(f"{path}: expected a W&B sweep configuration (a mapping)")
    return loaded


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
    if name not in sweepable():
        raise SweepConfigError(
            f"parameters: {name!r} is not a sweepable training option; sweepable: "
            f"{', '.join(sorted(sweepable()))}"
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
    if distribution == "q_uniform" and kind(name) == "int":
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
    if distribution == "q_uniform" and kind(name) == "int" and not is_integer(spec["q"]):
        raise SweepConfigError(f"parameter {name}: takes integers, so q must be an integer")
    if distribution == "log_uniform_values" and low <= 0:
        raise SweepConfigError(
            f"parameter {name}: log_uniform_values needs min > 0; got {low} "
            "(log_uniform takes natural-log exponents instead)"
        )
    if distribution == "log_uniform":
        return [(math.exp(end), f"exp({end}) = {math.exp(end):.4g}") for end in (low, high)]
    return [(low, repr(low)), (high, repr(high))]


def kind(name: str) -> str:
    """``int``, ``float``, ``str`` or ``tuple`` (hidden_sizes): how ``name`` is sampled, from
    the constraints table (``fnn.train.constraint``)."""
    return constraint(name).sample_kind()


def as_field(name: str, value: Any) -> Any:
    return tuple(value) if name == "hidden_sizes" and isinstance(value, list) else value


def _check_value(name: str, value: Any, shown: str) -> None:
    """``value`` of ``name`` checked against the same table ``fnn train`` validates with (for
    an optimizer hyperparameter, as the first optimizer that takes it declares it; the full
    configuration of each trial is validated again before it runs)."""
    try:
        constraint(name).check(name, value)
    except ConstraintError as error:
        reason = error.message.split("; got")[0]
        raise SweepConfigError(
            f"parameter {name}: value {shown} is invalid; {name} {reason}"
        ) from None
