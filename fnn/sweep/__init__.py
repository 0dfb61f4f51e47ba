"""Hyperparameter sweeps from a standard W&B sweep YAML: on a W&B server (``run_wandb``) or
offline with Optuna (``run_local``: a resumable study in SQLite or PostgreSQL, which several
worker processes may share; one tracker run per trial), and a report of a study or of a
folder of W&B runs (``report``).

- ``config``: the sweep YAML read, normalised and checked (``load_config``).
- ``training``: training one configuration, shared by both backends (``load_splits``).
- ``wandb_backend``: ``run_wandb`` and its agent; W&B run folders read back (``wandb_trials``).
- ``optuna_space``: the sweep as Optuna's sampler, pruner and suggest calls.
- ``optuna_storage``: the database workers share: its driver, the lock they claim trials
  under, retried creation.
- ``optuna_study``: the stored study: resuming, heartbeats, each worker's seed and count, the
  next trial (or grid point) to claim, trials read back.
- ``optuna_backend``: ``run_local``.
- ``report`` and ``render``: the report's data and importances; its figures, Markdown, HTML.

Optuna, PyYAML and wandb are imported inside the functions that need them. A setting such as
``HEARTBEAT_SECONDS`` is read from the module that defines it: patch it there, not here.
"""

from fnn.sweep.config import (
    DISTRIBUTIONS,
    EARLY_TERMINATE_KEYS,
    METHODS,
    METRIC_KEYS,
    METRICS,
    TOP_LEVEL_KEYS,
    UNSUPPORTED,
    SweepConfigError,
    load_config,
    sweepable,
)
from fnn.sweep.optuna_backend import run_local
from fnn.sweep.optuna_space import GRID_SEED, grid_space, optuna_pruner, optuna_sampler
from fnn.sweep.optuna_study import (
    DEFINITION_KEYS,
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    study_trials,
    trial_config,
)
from fnn.sweep.render import FIGURES, HTML_PAGE
from fnn.sweep.report import correlation_importance, report
from fnn.sweep.training import SPLIT_FIELDS, STATES, load_splits
from fnn.sweep.wandb_backend import (
    INSPECT_TIMEOUT,
    agent_function,
    inspect_run,
    run_wandb,
    wandb_config,
    wandb_trials,
)
from fnn.train import FIELDS, fit  # reachable here as before the split (fnn.study reads FIELDS)

__all__ = [
    "DEFINITION_KEYS",
    "DISTRIBUTIONS",
    "EARLY_TERMINATE_KEYS",
    "FIELDS",
    "FIGURES",
    "GRACE_SECONDS",
    "GRID_SEED",
    "HEARTBEAT_SECONDS",
    "HTML_PAGE",
    "INSPECT_TIMEOUT",
    "METHODS",
    "METRICS",
    "METRIC_KEYS",
    "SPLIT_FIELDS",
    "STATES",
    "sweepable",
    "TOP_LEVEL_KEYS",
    "UNSUPPORTED",
    "SweepConfigError",
    "agent_function",
    "correlation_importance",
    "fit",
    "grid_space",
    "inspect_run",
    "load_config",
    "load_splits",
    "optuna_pruner",
    "optuna_sampler",
    "report",
    "run_local",
    "run_wandb",
    "study_trials",
    "trial_config",
    "wandb_config",
    "wandb_trials",
]


def __getattr__(name: str):
    if name == "SWEEPABLE":  # the sweepable names as they are now (see ``sweepable``)
        return sweepable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
