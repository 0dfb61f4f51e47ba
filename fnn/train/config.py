"""What a training run is: ``TrainConfig``, the table of the values each of its settings
accepts (``CONSTRAINTS``, with the optimizer's hyperparameters read from the optimizer's own
declaration), ``validate``, the data splits a configuration describes, and the YAML files
that configurations are written in (``read_yaml``: sweeps; ``read_settings``: ``--config`` and
presets)."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnn import activations, data, init, losses, optimizers
from fnn.constraints import (
    POSITIVE_INT,
    UNIT,
    Constraint,
    ConstraintError,
    Interval,
    OneOf,
    Widths,
)
from fnn.train.step import SCHEDULES

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. Defaults: the best configuration by validation
    accuracy of ``fnn study --budget full`` (see README, "Default configuration")."""

    dataset: str = "fashion_mnist"
    epochs: int = 25
    batch_size: int = 64
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    momentum: float = 0.9
    beta: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.0
    weight_init: str = "xavier"
    num_layers: int = 2
    hidden_size: int = 384
    hidden_sizes: tuple[int, ...] | None = None
    activation: str = "relu"
    seed: int = 0
    val_fraction: float = 0.1
    train_subset: int | None = None
    dropout: float = 0.2
    patience: int | None = None
    dtype: str = "float32"
    log_every: int = 200
    data_dir: str | None = None
    source: str = "idx"
    classes: tuple[str, ...] | None = None  # a subset of the data set's classes, e.g. cat,dog
    resize: int | None = None  # shrink images to resize x resize by area averaging
    # hyperparameters of the optimizer that are not fields above (eve's beta3, k, K; those of
    # an optimizer added to fnn.optimizers.OPTIMIZERS), by name; unset ones take the defaults
    hparams: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. tracker settings, kept in the record

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hidden_sizes"] = list(self.hidden_layers())
        out["classes"] = None if self.classes is None else list(self.classes)
        return out

    def hidden_layers(self) -> tuple[int, ...]:
        """Widths of the hidden layers: ``hidden_sizes`` or ``num_layers`` x ``hidden_size``."""
        if self.hidden_sizes is not None:
            return tuple(self.hidden_sizes)
        return (self.hidden_size,) * self.num_layers

    def optimizer_hparams(self) -> dict[str, float]:
        """The hyperparameters the chosen optimizer takes, from this config's fields and
        ``hparams`` (the optimizer's defaults for those set in neither)."""
        values = {}
        for name in optimizers.hyperparameters(self.optimizer):
            if name in OPTIMIZER_FIELDS:
                values[name] = getattr(self, name)
            elif name in self.hparams:
                values[name] = self.hparams[name]
        return values


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


class ConfigError(ValueError):
    """A configuration value out of its accepted range; ``option`` names the CLI flag."""

    def __init__(self, option: str, message: str):
        super().__init__(f"--{option} {message}")
        self.option = option


# The settings that are optimizer hyperparameters (their values are checked against the chosen
# optimizer's declaration, see ``hyperparameter_constraint``); others go in ``hparams``.
OPTIMIZER_FIELDS = ("learning_rate", "momentum", "beta", "beta1", "beta2", "epsilon",
                    "weight_decay")  # fmt: skip


def _registered(registry: dict) -> OneOf:
    """One of the names of ``registry``, read when checked (so later additions count)."""
    return OneOf(lambda: tuple(registry))


# The valid values of every other setting (data_dir, classes and the free-form dicts aside).
CONSTRAINTS: dict[str, Constraint] = {
    "dataset": _registered(data.DATASETS),
    "epochs": POSITIVE_INT,
    "batch_size": POSITIVE_INT,
    "loss": _registered(losses.LOSSES),
    "optimizer": _registered(optimizers.OPTIMIZERS),
    "lr_schedule": _registered(SCHEDULES),
    "weight_init": _registered(init.INITIALISERS),
    "num_layers": Interval(int, 0, None),
    "hidden_size": POSITIVE_INT,
    "hidden_sizes": Widths(optional=True),
    "activation": _registered(activations.ACTIVATIONS),
    "seed": Interval(int, 0, None),
    "val_fraction": Interval(float, 0, 1, closed="neither"),
    "train_subset": Interval(int, 20, None, optional=True, unset="unset for all"),
    "dropout": UNIT,
    "patience": Interval(int, 1, None, optional=True, unset="unset for no early stopping"),
    "dtype": OneOf(DTYPES),
    "log_every": POSITIVE_INT,
    "source": OneOf(("idx", "tfds")),
    "resize": Interval(int, 1, None, optional=True, unset="unset for the original size"),
}


def hyperparameter_names() -> list[str]:
    """Every hyperparameter name of every registered optimizer, in first-seen order."""
    names: dict[str, None] = {}
    for name in optimizers.OPTIMIZERS:
        names.update(dict.fromkeys(optimizers.constraints(name)))
    return list(names)


def takers(hparam: str) -> list[str]:
    """The registered optimizers that take the hyperparameter ``hparam``."""
    return [name for name in optimizers.OPTIMIZERS if hparam in optimizers.constraints(name)]


def hyperparameter_constraint(hparam: str, optimizer: str | None = None) -> Constraint:
    """What ``hparam`` accepts: as ``optimizer`` declares it when it takes it, else as the first
    optimizer that takes it does; ``KeyError`` when none does."""
    if optimizer is not None and hparam in optimizers.constraints(optimizer):
        return optimizers.constraints(optimizer)[hparam]
    for name in takers(hparam):
        return optimizers.constraints(name)[hparam]
    raise KeyError(hparam)


def constraint(name: str, optimizer: str | None = None) -> Constraint | None:
    """What the setting or hyperparameter ``name`` accepts (None: free-form, as data_dir)."""
    if name in CONSTRAINTS:
        return CONSTRAINTS[name]
    try:
        return hyperparameter_constraint(name, optimizer)
    except KeyError:
        return None


def validate(config: TrainConfig) -> TrainConfig:
    """``config`` with every value checked against ``CONSTRAINTS`` and the optimizer's
    declaration and made canonical (ints, floats, lower-case names); ``ConfigError`` naming the
    option for the first bad value."""
    try:
        values = {
            name: rule.check(name, getattr(config, name)) for name, rule in CONSTRAINTS.items()
        }
        optimizer = values["optimizer"]
        for name in OPTIMIZER_FIELDS:
            values[name] = hyperparameter_constraint(name, optimizer).check(
                name, getattr(config, name)
            )
        values["hparams"] = _check_hparams(config.hparams, optimizer)
        # the factory itself: it also checks bounds between hyperparameters (eve's K > k)
        optimizers.get(optimizer, **dataclasses.replace(config, **values).optimizer_hparams())
    except ConstraintError as error:
        raise ConfigError(error.name, error.message) from None
    if config.data_dir is not None and not isinstance(config.data_dir, str):
        raise ConfigError("data_dir", f"must be a folder name; got {config.data_dir!r}")
    return _check_images(dataclasses.replace(config, **values))


def available_memory() -> int | None:
    """Bytes of memory available for new allocations (Linux: MemAvailable), or None."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(config: TrainConfig, features: int, classes: int) -> None:
    """``ConfigError`` naming the width option when training ``config``'s network could not
    fit in the memory available: parameters, gradients, updates, the optimizer's moments and a
    spare copy (about 6 param-sized buffers), plus a batch's activations forward and back."""
    sizes = [features, *config.hidden_layers(), classes]
    count = sum(n * o + o for n, o in zip(sizes[:-1], sizes[1:], strict=True))
    itemsize = 8 if config.dtype == "float64" else 4
    needed = (6 * count + 3 * config.batch_size * sum(sizes)) * itemsize
    available = available_memory()
    if available is not None and needed > available:
        option = "hidden_sizes" if config.hidden_sizes is not None else "hidden_size"
        raise ConfigError(
            option, f"makes a network of {count:,} parameters ({sizes[:4]}...): training it "
            f"needs about {needed / 2**30:,.1f} GiB, more than the {available / 2**30:.1f} GiB "
            "available"
        )  # fmt: skip


def _check_hparams(hparams: Any, optimizer: str) -> dict[str, float]:
    """``hparams`` checked: known hyperparameter names only, each value in its range."""
    if not isinstance(hparams, dict):
        raise ConfigError("hparams", f"must be a mapping of name: value; got {hparams!r}")
    known = hyperparameter_names()
    checked = {}
    for name, value in hparams.items():
        if name in OPTIMIZER_FIELDS or name not in known:
            raise ConfigError(
                str(name),
                f"is not an optimizer hyperparameter kept in hparams (known: "
                f"{', '.join(n for n in known if n not in OPTIMIZER_FIELDS)})",
            )
        checked[name] = hyperparameter_constraint(name, optimizer).check(name, value)
    return checked


def _check_images(config: TrainConfig) -> TrainConfig:
    """``classes`` as a tuple of known class names; ``resize`` dividing the image side."""
    classes = config.classes
    if isinstance(classes, str):
        classes = [part for part in classes.split(",") if part.strip()]
    if classes is not None:
        if not isinstance(classes, list | tuple):
            raise ConfigError("classes", f"must be class names such as cat,dog; got {classes!r}")
        try:
            classes = tuple(data.class_names(config.dataset, classes))
        except ValueError as error:
            raise ConfigError("classes", str(error)) from None
    side = data.IMAGE_SIDE[config.dataset]
    if config.resize is not None and side % config.resize:
        raise ConfigError(
            "resize", f"must divide {config.dataset}'s image side {side}; got {config.resize}"
        )
    return dataclasses.replace(config, classes=classes)


def load_splits(config: TrainConfig, *, progress: bool = False) -> data.Splits:
    """The train/validation/test splits that ``config``'s data settings describe."""
    return data.prepare(
        config.dataset,
        data_dir=config.data_dir,
        val_fraction=config.val_fraction,
        train_subset=config.train_subset,
        seed=config.seed,
        dtype=config.dtype,
        source=config.source,
        progress=progress,
        classes=config.classes,
        resize=config.resize,
    )


# --- configuration files ---------------------------------------------------------------------


def read_settings(path: str | os.PathLike, valid: Collection[str]) -> dict[str, Any]:
    """The ``option: value`` mapping in the YAML file ``path`` (``read_yaml``: a ``--config``
    file, a preset), or ``ValueError`` in one line without the path: not a mapping, or a key
    not in ``valid`` (with the closest valid one)."""
    values = read_yaml(path) or {}
    if not isinstance(values, dict):
        raise ValueError("expected a mapping of option: value")
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(str(key), sorted(valid), n=1)
            hint = f"did you mean {close[0]}?" if close else f"valid: {', '.join(sorted(valid))}"
            raise ValueError(f"unknown key {key!r}; {hint}")
    return values


MAX_YAML_BYTES = 1 << 20  # a sweep or --config file is a few hundred bytes


def read_yaml(path: str | os.PathLike) -> Any:
    """The YAML document in the regular file ``path`` (``yaml_loader``), or ``ValueError`` in
    one line without the path: not a regular file (a FIFO or ``/dev/zero`` would never end),
    over ``MAX_YAML_BYTES``, unreadable, not text, or not YAML (with its line and column)."""
    import yaml

    path = Path(path).expanduser()
    try:
        if not path.is_file():
            kind = "does not exist" if not path.exists() else "is not a regular file"
            raise ValueError(f"{kind} (a YAML file is expected)")
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ValueError(f"over {MAX_YAML_BYTES // 1024} KB: not a configuration file")
        return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml_loader())
    except UnicodeDecodeError:
        raise ValueError("not a text file (a YAML file is expected)") from None
    except OSError as error:
        raise ValueError(f"cannot read it ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{where}{problem}") from None


@functools.cache
def yaml_loader():
    """``yaml.SafeLoader`` that also reads ``1e-3`` as a float (YAML 1.1 needs ``1.0e-3``;
    plain PyYAML would hand the string '1e-3' to the learning rate) and refuses a key given
    twice in one mapping (PyYAML would keep the last silently)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor``
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} given twice (first on line {seen[key]})",
                            key_node.start_mark,
                        )  # fmt: skip
                    seen[key] = key_node.start_mark.line + 1
                except TypeError:  # an unhashable key: PyYAML reports it itself
                    continue
            return super().construct_mapping(node, deep=deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader
