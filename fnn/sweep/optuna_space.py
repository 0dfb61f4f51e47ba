"""A W&B sweep in Optuna's terms: its method as a sampler (``optuna_sampler``), a grid as the
list of its points (``grid_points``), hyperband as a pruner (``optuna_pruner``) and each
parameter's distribution as a ``trial.suggest_*`` call (``suggest``).

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from itertools import product
from typing import TYPE_CHECKING, Any

from fnn.sweep.config import SweepConfigError, kind
from fnn.train import TrainConfig

if TYPE_CHECKING:
    import optuna


def _choices(values: list) -> list:
    """Optuna categorical choices: lists (``hidden_sizes``) are stored as JSON strings."""
    if all(v is None or isinstance(v, str | int | float) for v in values):
        return list(values)
    return [json.dumps(v) for v in values]


def decoded(values: list, choice: Any) -> Any:
    return choice if _choices(values) == list(values) else json.loads(choice)


def grid_space(config: dict) -> dict[str, list]:
    """A grid's axes: the Optuna choices of every categorical parameter."""
    return {
        name: _choices(spec["values"])
        for name, spec in config["parameters"].items()
        if spec["distribution"] == "categorical"
    }


def grid_points(config: dict) -> list[dict[str, Any]]:
    """Every point of a grid, as the ``params`` of ``study.enqueue_trial``, in a fixed order
    (the product of the axes in name order, the last one varying fastest)."""
    space = grid_space(config)
    names = sorted(space)
    return [dict(zip(names, values, strict=True)) for values in product(*map(space.get, names))]


def optuna_sampler(config: dict, seed: int = 0) -> optuna.samplers.BaseSampler:
    """random and grid -> ``RandomSampler(seed)`` (a grid's trials all take a queued point,
    so its sampler never draws), bayes -> ``TPESampler(seed=seed)``."""
    import optuna

    if config["method"] == "bayes":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


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


def suggest(trial: optuna.Trial, name: str, spec: dict) -> Any:
    """The value of ``name`` for ``trial``: W&B's distribution as Optuna's suggest call."""
    distribution = spec["distribution"]
    if distribution == "constant":
        return spec["value"]
    if distribution == "categorical":
        choice = trial.suggest_categorical(name, _choices(spec["values"]))
        return decoded(spec["values"], choice)
    low, high = spec["min"], spec["max"]
    if distribution == "log_uniform":
        return trial.suggest_float(name, math.exp(low), math.exp(high), log=True)
    log = distribution == "log_uniform_values"
    step = spec["q"] if distribution == "q_uniform" else None
    if kind(name) == "int":
        return trial.suggest_int(name, low, high, step=step or 1, log=log)
    return trial.suggest_float(name, low, high, step=step, log=log)
