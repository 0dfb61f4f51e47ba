"""Training: what a run is (``TrainConfig`` and the table of valid values), the pure step
built from the core (``train_step``), and ``fit``, which runs the epochs of a configuration
over a train/validation split and returns the parameters and their history."""

from fnn.train.config import (
    CONSTRAINTS,
    DTYPES,
    FIELDS,
    OPTIMIZER_FIELDS,
    ConfigError,
    TrainConfig,
    check_memory,
    constraint,
    hyperparameter_constraint,
    hyperparameter_names,
    load_splits,
    read_settings,
    read_yaml,
    takers,
    validate,
)
from fnn.train.loop import ResumeError, build_optimizer, check_resume, fit, snapshot
from fnn.train.step import (
    SCHEDULES,
    TrainingDiverged,
    all_finite,
    constant,
    cosine,
    train_step,
)

__all__ = [
    "CONSTRAINTS", "DTYPES", "FIELDS", "OPTIMIZER_FIELDS", "SCHEDULES", "ConfigError",
    "ResumeError", "TrainConfig", "TrainingDiverged", "all_finite", "build_optimizer",
    "check_memory", "check_resume", "constant", "constraint", "cosine", "fit",
    "hyperparameter_constraint", "hyperparameter_names", "load_splits", "read_settings",
    "read_yaml", "snapshot", "takers", "train_step", "validate",
]  # fmt: skip
