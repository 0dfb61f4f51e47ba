"""Training: a pure step built from the core, and ``fit``, which runs the epochs of a
configuration over a train/validation split and returns the parameters and their history."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fnn import activations, data, init, losses, metrics, optimizers
from fnn.model import grads, init_mlp
from fnn.tracking import NoTracker, Tracker
from fnn.tree import Params, apply_updates, flatten

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
        """The hyperparameters the chosen optimizer takes, from this config."""
        names = optimizers.hyperparameters(self.optimizer)
        return {name: getattr(self, name) for name in names if hasattr(self, name)}


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


class ConfigError(ValueError):
    """A configuration value out of its accepted range; ``option`` names the CLI flag."""

    def __init__(self, option: str, message: str):
        super().__init__(f"--{option} {message}")
        self.option = option


class TrainingDiverged(RuntimeError):
    """The training loss or a gradient became non-finite (or Eve's loss feedback failed).
    ``params`` and ``history`` hold the last good parameters and the history so far, when
    ``fit`` raised it."""

    def __init__(self, message: str, *, params: Params | None = None, history=None):
        super().__init__(message)
        self.params, self.history = params, history


def cosine_decay(step: int, total: int) -> float:
    """The learning-rate multiplier of update ``step + 1`` of ``total`` under cosine decay to
    zero, (1 + cos(pi step / total)) / 2 (Loshchilov & Hutter, "SGDR", ICLR 2017, eq. 5
    without restarts; ``optax.cosine_decay_schedule`` with alpha 0 and
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total, eta_min=0)`` stepped per update).
    """
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def constant(step: int, total: int) -> float:
    """The multiplier of a constant learning rate: 1."""
    return 1.0


# lr_schedule -> the learning-rate multiplier of update ``step + 1`` of ``total``
SCHEDULES: dict[str, Callable[[int, int], float]] = {"constant": constant, "cosine": cosine_decay}


# (field, predicate, accepted range as the user reads it)
RANGES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("epochs", lambda v: v >= 1, ">= 1"),
    ("batch_size", lambda v: v >= 1, ">= 1"),
    ("num_layers", lambda v: v >= 0, ">= 0"),
    ("hidden_size", lambda v: v >= 1, ">= 1"),
    ("learning_rate", lambda v: v > 0 and math.isfinite(v), "> 0"),
    ("momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("beta", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("beta1", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("beta2", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("epsilon", lambda v: v > 0, "> 0"),
    ("weight_decay", lambda v: v >= 0, ">= 0"),
    ("val_fraction", lambda v: 0 < v < 1, "in (0, 1)"),
    ("dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("patience", lambda v: v is None or v >= 1, ">= 1"),
    ("train_subset", lambda v: v is None or v >= 20, ">= 20 (or unset for all)"),
    ("log_every", lambda v: v >= 1, ">= 1"),
    ("seed", lambda v: v >= 0, ">= 0"),
    ("hidden_sizes", lambda v: v is None or (len(v) >= 1 and min(v) >= 1), "positive widths"),
    ("resize", lambda v: v is None or v >= 1, ">= 1 (or unset for the original size)"),
]
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": tuple(data.DATASETS),
    "loss": tuple(losses.LOSSES),
    "optimizer": tuple(optimizers.OPTIMIZERS),
    "weight_init": tuple(init.INITIALISERS),
    "activation": tuple(activations.ACTIVATIONS),
    "dtype": DTYPES,
    "source": ("idx", "tfds"),
    "lr_schedule": tuple(SCHEDULES),
}


INTEGERS = ("epochs", "batch_size", "num_layers", "hidden_size", "seed", "train_subset",
            "patience", "log_every", "resize")  # fmt: skip
OPTIONAL = ("train_subset", "patience", "resize")
FLOATS = ("learning_rate", "momentum", "beta", "beta1", "beta2", "epsilon", "weight_decay",
          "val_fraction", "dropout")  # fmt: skip


def _typed(name: str, value: Any) -> Any:
    """``value`` as the field's type (an int, or a float; '1e-3' from YAML becomes 0.001)."""
    if value is None and name in OPTIONAL:
        return None
    if name in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(name, f"must be an integer; got {value!r}")
        return int(value)
    if isinstance(value, bool):
        raise ConfigError(name, f"must be a number; got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a number; got {value!r}") from None


def validate(config: TrainConfig) -> TrainConfig:
    """``config`` with its names lower-cased; ``ConfigError`` for the first bad value."""
    typed = {name: _typed(name, getattr(config, name)) for name in (*INTEGERS, *FLOATS)}
    if config.data_dir is not None and not isinstance(config.data_dir, str):
        raise ConfigError("data_dir", f"must be a folder name; got {config.data_dir!r}")
    config = dataclasses.replace(config, **typed)
    for name, allowed in CHOICES.items():
        value = getattr(config, name)
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")
    for name, accepts, description in RANGES:
        value = getattr(config, name)
        try:
            ok = accepts(value)
        except TypeError:
            ok = False
        if not ok:
            raise ConfigError(name, f"must be {description}; got {value!r}")
    config = dataclasses.replace(
        config, **{name: getattr(config, name).lower() for name in CHOICES}
    )
    return _check_images(config)


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


def scale_updates(updates: Params, factor: float, *, donate: bool = False) -> Params:
    """``updates`` times ``factor``, as a new tree (or, with ``donate=True``, in the memory of
    ``updates``, which the caller gives up). Every fnn optimizer's update is proportional to
    its learning rate, so this is the update at learning rate ``factor * lr``."""
    flat, layout = flatten(updates)
    out = flat if donate else layout.empty()
    np.multiply(flat, factor, out=out)
    return layout.unpack(out)


def all_finite(flat: np.ndarray) -> bool:
    """Whether every value of the 1-D ``flat`` is finite: one BLAS dot product (a non-finite
    value makes it non-finite), and the full check only when that overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.dot(flat, flat))
    return math.isfinite(total) or bool(np.isfinite(flat).all())


def train_step(
    optimizer: optimizers.Optimizer,
    *,
    activation: str,
    loss: str,
    dropout: float = 0.0,
    donate: bool = False,
) -> Callable:
    """A step ``(params, opt_state, xb, yb, rng=None, lr_scale=1.0) -> (params, opt_state,
    loss)``: gradients, the optimizer's update (given the loss, for Eve), scaled by
    ``lr_scale`` (a learning-rate schedule's multiplier), and its application.

    The step is pure: it never writes its arguments (``rng`` advances, as any generator drawn
    from), so a state can be stepped twice, branched or replayed. With ``donate=True`` the
    caller gives ``params`` and ``opt_state`` up at every call, as JAX donates buffers: the
    results are written into their memory, and the trees passed in must not be used again
    (fnn's functions raise ``DonatedError`` when given one; continue from what the step
    returned). ``fit`` steps this way.

    Raises ``TrainingDiverged`` before any update when the loss or a gradient is not finite,
    so the parameters given are the last good ones.
    """

    def step(params, opt_state, xb, yb, rng=None, lr_scale=1.0):
        value, gradients = grads(
            params, xb, yb, activation=activation, loss=loss, dropout=dropout, rng=rng
        )
        if not math.isfinite(value):
            raise TrainingDiverged(f"the minibatch loss is {value}")
        if not all_finite(flatten(gradients)[0]):
            raise TrainingDiverged(
                f"a gradient is not finite (minibatch loss {value:.4g}): check the inputs for "
                "inf or nan"
            )
        updates, opt_state = optimizer.update(
            gradients, opt_state, params, loss=value, donate=donate
        )
        if lr_scale != 1.0:  # the updates are this step's own new arrays: scale them in place
            updates = scale_updates(updates, lr_scale, donate=True)
        return apply_updates(params, updates, donate=donate), opt_state, value

    return step


def _copy(params: Params) -> Params:
    """A copy of ``params`` that later donated steps cannot overwrite."""
    flat, layout = flatten(params)
    return layout.unpack(flat.copy())


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def fit(
    config: TrainConfig,
    splits: data.Splits | None = None,
    *,
    tracker: Tracker | None = None,
    progress: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train ``config`` on ``splits`` (loaded from ``config.dataset`` when not given).

    Per epoch the history holds train and validation loss and accuracy (evaluation passes with
    the epoch's final parameters, no dropout) and the training time; every ``log_every`` steps
    the mean minibatch loss since the previous record (``running_train_loss``). With
    ``patience``, training stops after that many epochs without a lower validation loss and
    the best parameters are returned. ``lr_schedule="cosine"`` decays the learning rate to
    zero over all ``epochs`` (``cosine_decay``, per update).
    Raises ``TrainingDiverged`` as soon as a minibatch loss or a gradient is not finite.
    """
    config = validate(config)
    tracker = tracker or NoTracker()
    if splits is None:
        splits = load_splits(config, progress=progress)
    init_seed, batch_seed, dropout_seed = np.random.SeedSequence(config.seed).spawn(3)
    num_classes = int(max(splits.y_train.max(), splits.y_val.max())) + 1
    sizes = [splits.x_train.shape[1], *config.hidden_layers(), num_classes]
    params = init_mlp(
        sizes, init=config.weight_init, seed=np.random.default_rng(init_seed), dtype=config.dtype
    )
    optimizer = optimizers.get(config.optimizer, **config.optimizer_hparams())
    opt_state = optimizer.init(params)
    step = train_step(  # fit owns params and opt_state: each step reuses their memory
        optimizer,
        activation=config.activation,
        loss=config.loss,
        dropout=config.dropout,
        donate=True,
    )
    batch_rng = np.random.default_rng(batch_seed)
    shuffled = np.empty_like(splits.x_train)  # every epoch's shuffled copy of the training set
    dropout_rng = np.random.default_rng(dropout_seed) if config.dropout else None

    history: dict[str, Any] = {
        "epochs": [],
        "steps": [],
        "best_epoch": None,
        "stopped_early": False,
    }
    best_loss, best_params, stale = math.inf, params, 0
    steps_per_epoch = -(-len(splits.y_train) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = SCHEDULES[config.lr_schedule]
    global_step, loss_sum, loss_count = 0, 0.0, 0
    # Overflow on the way to a non-finite loss is reported as TrainingDiverged, not as warnings.
    with _progress(progress) as bar, np.errstate(over="ignore", invalid="ignore"):
        task = bar.add_task("epoch 1", total=steps_per_epoch * config.epochs, status="")
        for epoch in range(1, config.epochs + 1):
            bar.update(task, description=f"epoch {epoch}/{config.epochs}")
            started = time.perf_counter()
            for xb, yb in data.batches(
                splits.x_train, splits.y_train, config.batch_size, batch_rng, buffer=shuffled
            ):
                scale = schedule(global_step, total_steps)
                try:
                    params, opt_state, value = step(
                        params, opt_state, xb, yb, dropout_rng, lr_scale=scale
                    )
                except (optimizers.LossError, TrainingDiverged) as error:
                    # Eve's feedback on a zero loss, or a non-finite loss or gradient: no
                    # update was made, so params are the last good ones.
                    verb = "diverged" if isinstance(error, TrainingDiverged) else "stopped"
                    raise TrainingDiverged(
                        f"training {verb} at epoch {epoch}, step {global_step + 1}: {error}; "
                        f"try a lower learning rate than {config.learning_rate:g}",
                        params=params,
                        history=history,
                    ) from None
                global_step += 1
                loss_sum, loss_count = loss_sum + value, loss_count + 1
                if global_step % config.log_every == 0:
                    record = {"step": global_step, "running_train_loss": loss_sum / loss_count}
                    history["steps"].append(record)
                    tracker.log(record, step=global_step)
                    if progress:
                        bar.update(task, status=f"loss {record['running_train_loss']:.4f}")
                    loss_sum, loss_count = 0.0, 0
                if progress:  # a disabled bar still costs microseconds per call
                    bar.advance(task)
            seconds = time.perf_counter() - started

            train = metrics.evaluate(
                params,
                splits.x_train,
                splits.y_train,
                activation=config.activation,
                loss=config.loss,
            )
            val = metrics.evaluate(
                params, splits.x_val, splits.y_val, activation=config.activation, loss=config.loss
            )
            record = {
                "epoch": epoch,
                "step": global_step,
                "train_loss": train["loss"],
                "train_accuracy": train["accuracy"],
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "seconds": seconds,
            }
            history["epochs"].append(record)
            tracker.log(record, step=global_step)
            bar.update(task, status=f"val loss {val['loss']:.4f} acc {val['accuracy']:.2%}")
            if on_epoch is not None:
                on_epoch(record)
            if not math.isfinite(val["loss"]):
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch} (validation loss = {val['loss']}); "
                    f"try a lower learning rate than {config.learning_rate:g}",
                    params=params,
                    history=history,
                )
            if val["loss"] < best_loss:
                best_loss, best_params, stale = val["loss"], _copy(params), 0
                history["best_epoch"] = epoch
            else:
                stale += 1
            if config.patience is not None and stale >= config.patience:
                history["stopped_early"] = True
                break
    if config.patience is not None:
        params = best_params
    return params, history
