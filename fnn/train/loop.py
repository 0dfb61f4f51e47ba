"""``fit``: the epochs of a configuration over a train/validation split — the pure step,
the learning-rate schedule, per-epoch evaluation, early stopping — returning the parameters and
their history."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fnn import data, metrics, optimizers
from fnn.model import init_mlp
from fnn.tracking import NoTracker, Tracker
from fnn.train.config import TrainConfig, check_memory, load_splits, validate
from fnn.train.step import SCHEDULES, TrainingDiverged, train_step
from fnn.tree import Params, ravel, tree_leaves_with_path
from fnn.tree_io import from_arrays, to_arrays


@dataclass
class _Run:
    """Everything a run carries from one step to the next."""

    params: Params
    opt_state: Any
    batch_rng: np.random.Generator
    dropout_rng: np.random.Generator | None
    history: dict[str, Any] = field(
        default_factory=lambda: {
            "epochs": [],
            "steps": [],
            "best_epoch": None,
            "stopped_early": False,
        }  # fmt: skip
    )
    global_step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    best_loss: float = math.inf
    best_params: Params | None = None
    stale: int = 0  # epochs since the validation loss last fell
    epoch: int = 0  # epochs completed


def _fill(tree: Params, arrays: dict[str, np.ndarray], prefix: str) -> Params:
    """A new tree like ``tree`` with every leaf from ``arrays[prefix/path]`` (``from_arrays``),
    or ``ResumeError`` naming the first one missing or of another shape."""
    picked = {}
    for path, leaf in tree_leaves_with_path(tree):
        key, saved = f"{prefix}/{path}", arrays.get(f"{prefix}/{path}")
        if saved is None or np.shape(saved) != np.shape(leaf):
            found = "missing" if saved is None else f"of shape {np.shape(saved)}"
            raise ResumeError(
                f"the checkpoint's {key} is {found} where the run has {np.shape(leaf)}"
            )
        picked[path] = saved
    return from_arrays(tree, picked)


class ResumeError(ValueError):
    """A saved training state that does not fit the configuration it is resumed with."""


def _state_name(state: Any) -> str:
    """``AdamState``, or ``chain(AdamState, ScheduleState)`` for a chain's tuple of states."""
    if type(state) is tuple:
        return f"chain({', '.join(_state_name(inner) for inner in state)})"
    return type(state).__name__


def snapshot(run: _Run) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Everything ``fit`` needs to continue ``run`` bit for bit after its last complete epoch:
    JSON-ready values and named arrays. The arrays are ``fnn.to_arrays`` of the params, the
    best params and the optimizer state under ``params/``, ``best/`` and ``opt/``, so
    ``fnn.load_tree`` reads them back into ``{"params": ..., "best": ..., "opt": opt.init(...)}``;
    the state's numbers are repeated in ``optimizer_scalars`` for people reading state.json."""
    trees = {"params": run.params, "opt": run.opt_state}
    if run.best_params is not None:
        trees["best"] = run.best_params
    scalars = {path: value for path, value in tree_leaves_with_path(run.opt_state)
               if not isinstance(value, np.ndarray)}  # fmt: skip
    state = {
        "epoch": run.epoch, "global_step": run.global_step, "loss_sum": run.loss_sum,
        "loss_count": run.loss_count, "stale": run.stale,
        "best_loss": run.best_loss if math.isfinite(run.best_loss) else None,
        "history": run.history, "optimizer": _state_name(run.opt_state),
        "optimizer_scalars": scalars, "batch_rng": run.batch_rng.bit_generator.state,
        "dropout_rng": None if run.dropout_rng is None else run.dropout_rng.bit_generator.state,
    }  # fmt: skip
    return state, to_arrays(trees)


def _flat_moments(run: _Run, state: dict[str, Any], arrays: dict) -> dict:
    """The arrays of a checkpoint of fnn before format 4 (each of the state's moments saved as
    a params-shaped tree, ``opt/first_moment/layer_0/w``, its numbers only in state.json) named
    as ``fnn.to_arrays`` names them: ``opt/first_moment`` flat, ``opt/count``."""
    layout, out = ravel(run.params)[1], dict(arrays)
    for path, value in tree_leaves_with_path(run.opt_state):
        key = f"opt/{path}"
        if key in arrays:
            continue
        if isinstance(value, np.ndarray):
            out[key] = ravel(_fill(layout.unravel(value), arrays, key))[0]
            for old in [name for name in out if name.startswith(f"{key}/")]:
                del out[old]
        elif path in state["optimizer_scalars"]:
            out[key] = np.asarray(state["optimizer_scalars"][path])
        else:
            raise ResumeError(f"the checkpoint has no {key}")
    return out


def _from_before_chains(run: _Run, state: dict[str, Any], arrays: dict) -> tuple[dict, dict]:
    """A checkpoint of a scheduled run from before learning-rate schedules were chains (its
    state was the optimizer's alone, ``opt/first_moment/...``), named as a chain's:
    ``opt/0/first_moment/...``, and the schedule's count, which is the number of updates."""
    inner = run.opt_state[0] if type(run.opt_state) is tuple and len(run.opt_state) == 2 else None
    if inner is None or state.get("optimizer") != _state_name(inner):
        return state, arrays
    scalars = {f"0/{key}": value for key, value in state["optimizer_scalars"].items()}
    state = {**state, "optimizer": _state_name(run.opt_state),
             "optimizer_scalars": {**scalars, "1/count": state["global_step"]}}  # fmt: skip
    renamed = {f"opt/0/{key[4:]}" if key.startswith("opt/") else key: value
               for key, value in arrays.items()}  # fmt: skip
    return state, renamed


def check_resume(config: TrainConfig, splits: data.Splits, resume: tuple[dict, dict]) -> None:
    """``ResumeError`` now if ``fit(config, splits, resume=resume)`` would raise it."""
    _restore(config, splits, *resume)


def _restore(
    config: TrainConfig, splits: data.Splits, state: dict[str, Any], arrays: dict
) -> tuple[_Run, optimizers.Optimizer]:
    """The run ``snapshot`` described, continued with ``config`` on ``splits``."""
    run, optimizer = _start(config, splits)
    state, arrays = _from_before_chains(run, state, arrays)
    if state.get("optimizer") != _state_name(run.opt_state):
        raise ResumeError(
            f"the checkpoint holds a {state.get('optimizer')} state, the run a "
            f"{_state_name(run.opt_state)}"
        )
    arrays = _flat_moments(run, state, arrays)
    run.params = _fill(run.params, arrays, "params")  # the params first: the likeliest to differ
    if any(key.startswith("best/") for key in arrays):
        run.best_params = _fill(run.params, arrays, "best")
    run.opt_state = _fill(run.opt_state, arrays, "opt")
    run.batch_rng.bit_generator.state = state["batch_rng"]
    if run.dropout_rng is not None and state["dropout_rng"] is not None:
        run.dropout_rng.bit_generator.state = state["dropout_rng"]
    run.epoch, run.global_step, run.stale = state["epoch"], state["global_step"], state["stale"]
    run.loss_sum, run.loss_count = state["loss_sum"], state["loss_count"]
    run.best_loss = math.inf if state["best_loss"] is None else state["best_loss"]
    run.history = state["history"]
    return run, optimizer


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


def build_optimizer(config: TrainConfig, samples: int) -> optimizers.Optimizer:
    """``config``'s optimizer with its hyperparameters and its learning-rate schedule
    (``SCHEDULES``) over every update of a run on ``samples`` training examples."""
    hparams = config.optimizer_hparams()
    total = config.epochs * -(-samples // config.batch_size)
    hparams["learning_rate"] = SCHEDULES[config.lr_schedule](hparams["learning_rate"], total)
    return optimizers.get(config.optimizer, **hparams)


def _start(config: TrainConfig, splits: data.Splits) -> tuple[_Run, optimizers.Optimizer]:
    """The initial parameters and optimizer state, and the generators of batch order and
    dropout, each from its own stream of ``config.seed``."""
    init_seed, batch_seed, dropout_seed = np.random.SeedSequence(config.seed).spawn(3)
    num_classes = int(max(splits.y_train.max(), splits.y_val.max())) + 1
    check_memory(config, splits.x_train.shape[1], num_classes)
    sizes = [splits.x_train.shape[1], *config.hidden_layers(), num_classes]
    params = init_mlp(
        sizes, init=config.weight_init, seed=np.random.default_rng(init_seed), dtype=config.dtype
    )
    optimizer = build_optimizer(config, len(splits.y_train))
    run = _Run(
        params=params,
        opt_state=optimizer.init(params),
        batch_rng=np.random.default_rng(batch_seed),
        dropout_rng=np.random.default_rng(dropout_seed) if config.dropout else None,
    )
    return run, optimizer


def fit(
    config: TrainConfig,
    splits: data.Splits | None = None,
    *,
    tracker: Tracker | None = None,
    progress: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_checkpoint: Callable[[Params, dict[str, Any], dict[str, np.ndarray]], None] | None = None,
    resume: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train ``config`` on ``splits`` (loaded from ``config.dataset`` when not given).

    Per epoch the history holds train and validation loss and accuracy (evaluation passes with
    the epoch's final parameters, no dropout) and the training time; every ``log_every`` steps
    the mean minibatch loss since the previous record (``running_train_loss``). With
    ``patience``, training stops after that many epochs without a lower validation loss and
    the best parameters are returned. ``lr_schedule="cosine"`` decays the learning rate to
    zero over all ``epochs`` (``SCHEDULES``: the optimizer's own learning-rate schedule).
    Raises ``TrainingDiverged`` as soon as a minibatch loss or a gradient is not finite.

    After every epoch ``on_checkpoint(model, state, arrays)`` gets the parameters to keep (the
    best ones with ``patience``) and ``snapshot``'s description of the run; ``resume=(state,
    arrays)`` continues from one, giving bit for bit the result of the run never stopped
    (``ResumeError`` if it does not fit ``config``). ``config.epochs`` may exceed the saved
    run's to train longer.
    """
    config = validate(config)
    tracker = tracker or NoTracker()
    if splits is None:
        splits = load_splits(config, progress=progress)
    run, optimizer = _start(config, splits) if resume is None else _restore(config, splits, *resume)
    step = train_step(
        optimizer, activation=config.activation, loss=config.loss, dropout=config.dropout
    )
    shuffled = np.empty_like(splits.x_train)  # every epoch's shuffled copy of the training set
    steps_per_epoch = -(-len(splits.y_train) // config.batch_size)
    # Overflow on the way to a non-finite loss is reported as TrainingDiverged, not as warnings.
    with _progress(progress) as bar, np.errstate(over="ignore", invalid="ignore"):
        task = bar.add_task("epoch 1", total=steps_per_epoch * config.epochs, status="",
                            completed=steps_per_epoch * run.epoch)  # fmt: skip
        for epoch in range(run.epoch + 1, config.epochs + 1):
            bar.update(task, description=f"epoch {epoch}/{config.epochs}")
            started = time.perf_counter()
            for xb, yb in data.batches(
                splits.x_train, splits.y_train, config.batch_size, run.batch_rng, buffer=shuffled
            ):
                _step(run, step, config, epoch, xb, yb, tracker)
                if progress:  # a disabled bar still costs microseconds per call
                    bar.update(task, advance=1, status=f"train loss {_live_loss(run):.4f}")
            record = _end_epoch(run, config, splits, epoch, time.perf_counter() - started)
            tracker.log(record, step=run.global_step)
            bar.update(task, status=f"val loss {record['val_loss']:.4f} "
                                    f"acc {record['val_accuracy']:.2%}")  # fmt: skip
            if on_epoch is not None:
                on_epoch(record)
            stop = _should_stop(run, config, epoch, record)
            run.epoch = epoch
            if on_checkpoint is not None:
                on_checkpoint(_model(run, config), *snapshot(run))
            if stop:
                break
    return _model(run, config), run.history


def _live_loss(run: _Run) -> float:
    """The mean train loss of the updates since the last recorded one (``log_every``), or the
    last recorded value right after a record: what the progress bar shows at every update."""
    if run.loss_count:
        return run.loss_sum / run.loss_count
    steps = run.history["steps"]
    return steps[-1]["running_train_loss"] if steps else math.nan


def _model(run: _Run, config: TrainConfig) -> Params:
    """The parameters a run yields: the best ones with ``patience``, else the latest."""
    return run.best_params if config.patience is not None else run.params


def _step(run: _Run, step, config: TrainConfig, epoch: int, xb, yb, tracker) -> None:
    """One update of ``run`` (its schedule is the optimizer's own), and the running loss
    recorded every ``log_every`` steps."""
    try:
        run.params, run.opt_state, value = step(run.params, run.opt_state, xb, yb, run.dropout_rng)
    except (optimizers.LossError, TrainingDiverged) as error:
        # Eve's feedback on a zero loss, or a non-finite loss or gradient: no update was made,
        # so the params are the last good ones.
        verb = "diverged" if isinstance(error, TrainingDiverged) else "stopped"
        raise TrainingDiverged(
            f"training {verb} at epoch {epoch}, step {run.global_step + 1}: {error}; "
            f"try a lower learning rate than {config.learning_rate:g}",
            params=run.params,
            history=run.history,
        ) from None
    run.global_step += 1
    run.loss_sum, run.loss_count = run.loss_sum + value, run.loss_count + 1
    if run.global_step % config.log_every == 0:
        record = {"step": run.global_step, "running_train_loss": run.loss_sum / run.loss_count}
        run.history["steps"].append(record)
        tracker.log(record, step=run.global_step)
        run.loss_sum, run.loss_count = 0.0, 0


def _end_epoch(
    run: _Run, config: TrainConfig, splits: data.Splits, epoch: int, seconds: float
) -> dict[str, Any]:
    """The epoch's record: train and validation loss and accuracy of its final parameters."""
    scores = {
        part: metrics.evaluate(run.params, x, y, activation=config.activation, loss=config.loss)
        for part, x, y in (
            ("train", splits.x_train, splits.y_train),
            ("val", splits.x_val, splits.y_val),
        )  # fmt: skip
    }
    record = {"epoch": epoch, "step": run.global_step}
    for part in ("train", "val"):
        record[f"{part}_loss"] = scores[part]["loss"]
        record[f"{part}_accuracy"] = scores[part]["accuracy"]
    record["seconds"] = seconds
    run.history["epochs"].append(record)
    return record


def _should_stop(run: _Run, config: TrainConfig, epoch: int, record: dict[str, Any]) -> bool:
    """Early-stopping bookkeeping after ``epoch``: whether ``patience`` has run out.
    ``TrainingDiverged`` when the validation loss is not finite."""
    val_loss = record["val_loss"]
    if not math.isfinite(val_loss):
        raise TrainingDiverged(
            f"training diverged at epoch {epoch} (validation loss = {val_loss}); "
            f"try a lower learning rate than {config.learning_rate:g}",
            params=run.params,
            history=run.history,
        )
    if val_loss < run.best_loss:
        run.best_loss, run.best_params, run.stale = val_loss, run.params, 0  # never written again
        run.history["best_epoch"] = epoch
    else:
        run.stale += 1
    if config.patience is not None and run.stale >= config.patience:
        run.history["stopped_early"] = True
        return True
    return False
