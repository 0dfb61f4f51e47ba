"""The options of ``fnn train``, built from one table: each training setting's course flag and a
short description live here; its type and default come from ``TrainConfig``, and what it
accepts from the constraints table (``fnn.train.constraint``), so ``--help`` shows the ranges
that validation enforces. An optimizer's hyperparameters that are not ``TrainConfig`` fields
(eve's beta3, k, K; those of an optimizer added to the registry) become options too."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from fnn import optimizers
from fnn import train as training
from fnn.constraints import OneOf
from fnn.train import OPTIMIZER_FIELDS, TrainConfig

# The --data_dir option of every command that reads data
DataDir = Annotated[
    str | None,
    typer.Option("--data_dir", help="Folder holding mnist/ or fashion-mnist/ (default: "
                 "$FNN_DATA_DIR, the cache, /usr/share/datasets); with --source tfds, the "
                 "TFDS data folder (default: $TFDS_DATA_DIR)."),
]  # fmt: skip

# name -> (short flags, description), in --help order; the course's flags as they were
TRAIN_FLAGS: dict[str, tuple[tuple[str, ...], str]] = {
    "wandb_project": (("-wp",), "W&B project."),
    "wandb_entity": (("-we",), "W&B entity (user or team)."),
    "dataset": (("-d",), "Data set:"),
    "epochs": (("-e",), "Passes over the training set:"),
    "batch_size": (("-b",), "Samples per update:"),
    "loss": (("-l",), "Loss:"),
    "optimizer": (("-o",), "Optimizer:"),
    "learning_rate": (("-lr",), "Step size"),
    "lr_schedule": ((), "constant, or cosine decay to 0 over the epochs:"),
    "momentum": (("-m",), "Momentum"),
    "beta": (("-beta",), "Decay of the squared-gradient average"),
    "beta1": (("-beta1",), "Decay of the first moment"),
    "beta2": (("-beta2",), "Decay of the second moment"),
    "epsilon": (("-eps",), "Denominator offset"),
    "weight_decay": (("-w_d",), "Coupled L2"),
    "weight_init": (("-w_i",), "Weight initialisation:"),
    "num_layers": (("-nhl",), "Hidden layers:"),
    "hidden_size": (("-sz",), "Width of each hidden layer:"),
    "activation": (("-a",), "Hidden activation:"),
    "hidden_sizes": ((), "Overrides --num_layers/--hidden_size:"),
    "seed": ((), "Seeds init, split and batches:"),
    "val_fraction": ((), "Stratified validation share:"),
    "train_subset": ((), "Train on a stratified subset of N:"),
    "dropout": ((), "Inverted dropout on hidden layers:"),
    "patience": ((), "Early stopping on val loss, epochs:"),
    "log_every": ((), "Record the running train loss every N steps:"),
    "save": (
        (),
        "Checkpoint folder, written after every epoch (the model, and the state "
        "--resume continues); files of yours there are left alone.",
    ),
    "resume": (
        (),
        "Continue the run saved in this folder from its last complete epoch, with "
        "its own settings (--epochs may be raised).",
    ),
    "overwrite": ((), "Let --save replace the checkpoint of another run."),
    "data_changed_ok": (
        (),
        "Let --resume continue on data other than those the run trained on (by default "
        "that is refused).",
    ),
    "data_dir": ((), "Folder holding mnist/ or fashion-mnist/."),
    "source": ((), "Where the data come from:"),
    "classes": ((), "Keep only these classes, e.g. automobile,cat."),
    "resize": ((), "Shrink images to N x N by area averaging (N divides the side):"),
    "dtype": ((), "Floating-point type:"),
    "tracker": ((), "wandb (offline without a key or network) or none."),
    "config": ((), "YAML file of option: value; flags win."),
    "quiet": (("-q",), "Print only the result."),
}
# Options that are not TrainConfig fields: (type, default)
CLI_ONLY: dict[str, tuple[Any, Any]] = {
    "wandb_project": (str, "fnn"),
    "wandb_entity": (str | None, None),
    "save": (Path | None, None),
    "resume": (Path | None, None),
    "overwrite": (bool, False),
    "data_changed_ok": (bool, False),
    "tracker": (str, "wandb"),
    "config": (Path | None, None),
    "quiet": (bool, False),
}
# TrainConfig fields typed differently on the command line (text parsed by validation)
AS_TEXT = {"hidden_sizes": str | None, "classes": str | None}
FIELD_TYPES = {"int": int, "float": float, "str": str, "int | None": int | None,
               "str | None": str | None}  # fmt: skip


def accepts(name: str) -> str:
    """What ``name`` accepts, for its help: the registry's names or the range; for an optimizer
    hyperparameter, per optimizer that takes it ("adam, nadam: in [0, 1)")."""
    if name in training.CONSTRAINTS:
        rule = training.CONSTRAINTS[name]
        return "|".join(rule.options) if isinstance(rule, OneOf) else rule.describe()
    groups: dict[str, list[str]] = {}
    for optimizer in training.takers(name):
        groups.setdefault(
            training.hyperparameter_constraint(name, optimizer).describe(), []
        ).append(optimizer)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items())


def _option(name: str, kind: Any, default: Any, flags: tuple[str, ...], help: str):
    annotation = Annotated[kind, typer.Option(f"--{name}", *flags, help=help)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


def extra_hyperparameters() -> list[str]:
    """The optimizers' hyperparameters that are not TrainConfig fields (kept in ``hparams``)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return [name for name in training.hyperparameter_names() if name not in fields]


def train_parameters() -> list[inspect.Parameter]:
    """``fnn train``'s options, from ``TRAIN_FLAGS``, ``TrainConfig`` and the constraints."""
    defaults = TrainConfig()
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    parameters = []
    for name, (flags, description) in TRAIN_FLAGS.items():
        if name in CLI_ONLY:
            kind, default = CLI_ONLY[name]
            help = description
        else:
            kind = AS_TEXT.get(name) or FIELD_TYPES[types[name]]
            default = getattr(defaults, name)
            help = description
            if name in OPTIMIZER_FIELDS:
                help = f"{description}, for {accepts(name)}."
            elif name in training.CONSTRAINTS:
                help = f"{description} {accepts(name)}."
        parameters.append(_option(name, kind, default, flags, help))
    for name in extra_hyperparameters():
        shown = ", ".join(
            f"{optimizer} {optimizers.defaults(optimizer)[name]:g}"
            for optimizer in training.takers(name)
            if name in optimizers.defaults(optimizer)
        )
        help = f"For {accepts(name)} (default: {shown or 'none'})."
        parameters.append(_option(name, float | None, None, (), help))
    return parameters
