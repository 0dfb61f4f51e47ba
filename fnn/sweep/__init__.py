"""Hyperparameter sweeps from a standard W&B sweep YAML: on a W&B server (``run_wandb``) or
offline with Optuna (``run_local``: a resumable study in SQLite or PostgreSQL, which several
worker processes may share; one tracker run per trial), and a report of a study or of a
folder of W&B runs (``report``).

- ``config``: the sweep YAML read, normalised and checked (``load_config``).
- ``training``: training one configuration, shared by both backends (``load_splits``).
- ``optuna_space``: the sweep as Optuna's sampler, pruner, grid points and suggest calls.
- ``optuna_storage``: the database the workers share: its driver, their lock, retried creation.
- ``local``: ``run_local``: trials trained, reported and recorded.
- ``workers``: how the workers of a local sweep share one study (counts, grid points, retries).
- ``wandb_backend``: ``run_wandb`` and its agent; W&B run folders read back (``wandb_trials``).
- ``report``: the report (figures, Markdown, HTML), and a study read back (``study_trials``).

Optuna, PyYAML and wandb are imported inside the functions that need them. A setting such as
``HEARTBEAT_SECONDS`` is read from the module that defines it: patch it there, not here.
"""

from fnn.sweep.config import SweepConfigError, load_config, sweepable
from fnn.sweep.local import run_local
from fnn.sweep.optuna_space import grid_points, grid_space, optuna_pruner, optuna_sampler
from fnn.sweep.report import (
    correlation_importance,
    load_study,
    report,
    study_metric,
    study_trials,
    trial_config,
)
from fnn.sweep.training import load_splits
from fnn.sweep.wandb_backend import agent_function, inspect_run, run_wandb, wandb_trials
from fnn.sweep.workers import GRACE_SECONDS, HEARTBEAT_SECONDS

__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "SweepConfigError",
    "agent_function",
    "correlation_importance",
    "grid_points",
    "grid_space",
    "inspect_run",
    "load_config",
    "load_splits",
    "load_study",
    "optuna_pruner",
    "optuna_sampler",
    "report",
    "run_local",
    "run_wandb",
    "study_metric",
    "study_trials",
    "sweepable",
    "trial_config",
    "wandb_trials",
]
