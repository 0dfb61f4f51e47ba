"""The ``fnn`` command line (Typer): every command is a thin layer over the library.

Errors are one line on stderr: exit code 2 for bad input, 1 for a run that failed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import get_console
from rich.console import Console
from rich.table import Table

from fnn import activations, checkpoint, data, losses, tracking
from fnn.gradcheck import gradcheck as run_gradcheck
from fnn.model import init_mlp
from fnn.registry import lookup
from fnn.train import (
    CHOICES,
    FIELDS,
    ConfigError,
    TrainConfig,
    TrainingDiverged,
    load_splits,
    validate,
)

app = typer.Typer(
    help="fnn: train and compare MLPs and optimizers, in pure NumPy.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = get_console()  # the console the progress bar draws on, so prints interleave
errors = Console(stderr=True)
DEFAULT = TrainConfig()
CLI_ONLY = {"wandb_project", "wandb_entity", "tracker", "save", "quiet"}


class UsageFailure(Exception):
    """Bad input found after parsing: reported in one line with exit code 2."""


class RunFailure(Exception):
    """A run that could not complete (no data, divergence): one line, exit code 1."""


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise typer.BadParameter("expected at least two positive sizes: n_in,...,n_out")
    return sizes


def _parse_hidden_sizes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        sizes = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ConfigError("hidden_sizes", f"expects comma-separated widths; got {text!r}") from None
    return sizes


def _choice(value: str, registry: dict, kind: str) -> str:
    """``value``'s registry name, or a usage error that lists the valid ones."""
    try:
        lookup(registry, value, kind)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value.lower()


@app.callback()
def main_callback() -> None:
    """fnn: train and compare MLPs and optimizers, in pure NumPy."""


def _choices(name: str) -> str:
    return "|".join(CHOICES[name])


def _read_config_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UsageFailure(f"--config {path}: cannot read it ({error})".splitlines()[0]) from None
    if not isinstance(values, dict):
        raise UsageFailure(f"--config {path}: expected a mapping of option: value")
    unknown = sorted(set(values) - FIELDS - CLI_ONLY)
    if unknown:
        raise UsageFailure(
            f"--config {path}: unknown key(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted((FIELDS | CLI_ONLY) - {'extra'}))}"
        )
    return values


def _merge(ctx: typer.Context, flags: dict[str, Any], config_file: Path | None) -> dict[str, Any]:
    """Defaults, then the values of ``--config``, then the flags given on the command line."""
    from_file = _read_config_file(config_file) if config_file else {}
    merged = {}
    for name, value in flags.items():
        source = ctx.get_parameter_source(name)
        given = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
        merged[name] = value if given or name not in from_file else from_file[name]
    return merged


def build_config(values: dict[str, Any]) -> TrainConfig:
    """A validated ``TrainConfig`` from merged option values (CLI-only keys go to ``extra``)."""
    fields = {k: v for k, v in values.items() if k in FIELDS and k != "extra"}
    hidden = fields.get("hidden_sizes")
    if hidden is not None and not isinstance(hidden, list | tuple):
        fields["hidden_sizes"] = _parse_hidden_sizes(hidden)
    elif hidden is not None:
        fields["hidden_sizes"] = tuple(hidden)
    kind = str(values.get("tracker", "wandb")).lower()
    values["tracker"] = kind
    if kind not in tracking.TRACKERS:
        raise ConfigError("tracker", f"must be one of {', '.join(tracking.TRACKERS)}; got {kind!r}")
    data_dir = values.get("data_dir")
    if data_dir is not None and not Path(str(data_dir)).expanduser().is_dir():
        raise ConfigError("data_dir", f"must be an existing folder; {data_dir} is not one")
    extra = {k: v for k, v in values.items() if k in CLI_ONLY and k != "quiet"}
    return validate(TrainConfig(**fields, extra=extra))


def _print_epoch(record: dict[str, Any]) -> None:
    console.print(
        f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f} "
        f"acc {record['train_accuracy']:.2%}  val loss {record['val_loss']:.4f} "
        f"acc {record['val_accuracy']:.2%}  ({record['seconds']:.1f} s)"
    )


def run_training(values: dict[str, Any], *, quiet: bool = False) -> dict[str, Any]:
    """Train, evaluate on the test set once, save if asked; returns the summary."""
    from fnn import metrics
    from fnn.train import fit

    config = build_config(values)
    save_dir = values.get("save")
    if save_dir:
        try:
            checkpoint.check_writable(save_dir)
        except checkpoint.CheckpointError as error:
            raise UsageFailure(str(error)) from None
    show_progress = not quiet and console.is_terminal
    try:
        splits = load_splits(config, progress=show_progress)
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    class_names = data.class_names(config.dataset, config.classes)
    if not quiet:
        sizes = [splits.x_train.shape[1], *config.hidden_layers(), len(class_names)]
        console.print(
            f"{config.dataset}: {len(splits.y_train)} train, {len(splits.y_val)} val, "
            f"{len(splits.y_test)} test; MLP {sizes} {config.activation}, {config.optimizer} "
            f"lr {config.learning_rate:g}, batch {config.batch_size}, {config.epochs} epochs"
        )
    tracker = tracking.start(
        values.get("tracker", "wandb"),
        config.to_dict(),
        project=values.get("wandb_project") or "fnn",
        entity=values.get("wandb_entity"),
        say=lambda line: errors.print(line, highlight=False, markup=False, soft_wrap=True),
    )
    try:
        params, history = fit(
            config,
            splits,
            tracker=tracker,
            progress=show_progress,
            on_epoch=None if quiet else _print_epoch,
        )
        test = metrics.evaluate(
            params, splits.x_test, splits.y_test, activation=config.activation, loss=config.loss
        )
        summary = _summarise(config, history, test)
        tracker.summary(summary)
        _log_confusion(tracker, splits.y_test, test, class_names, config.dataset)
    except TrainingDiverged as error:
        raise RunFailure(str(error)) from None
    finally:
        tracker.finish()
    history["test"] = {"loss": test["loss"], "accuracy": test["accuracy"]}
    console.print(
        f"val accuracy {summary['val_accuracy']:.2%}  test accuracy {summary['test_accuracy']:.2%}"
        f"  (test loss {summary['test_loss']:.4f}; {summary['train_seconds']:.1f} s training)"
    )
    if save_dir:
        path = checkpoint.save(save_dir, params, config.to_dict(), history)
        if not quiet:
            console.print(f"saved to {path} (inspect with `fnn evaluate {path}`)")
    return summary


def _summarise(config: TrainConfig, history: dict[str, Any], test: dict[str, Any]) -> dict:
    last = history["epochs"][-1]
    best = history["epochs"][history["best_epoch"] - 1] if config.patience else last
    return {
        "val_accuracy": best["val_accuracy"],
        "val_loss": best["val_loss"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "epochs_run": len(history["epochs"]),
        "train_seconds": sum(e["seconds"] for e in history["epochs"]),
    }


def _log_confusion(tracker, labels, test: dict[str, Any], class_names, dataset: str) -> None:
    """W&B's stock confusion chart plus our normalised figure that names the confused pairs."""
    if isinstance(tracker, tracking.NoTracker):
        return
    from fnn import plots

    tracker.confusion("confusion", labels, test["predictions"], class_names)
    with tempfile.TemporaryDirectory() as folder:
        figure = plots.confusion_figure(
            test["confusion"], class_names, Path(folder) / "confusion.png", title=f"{dataset} test"
        )
        tracker.image("confusion_matrix", figure, caption="rows normalised per true class")


@app.command()
def train(
    ctx: typer.Context,
    wandb_project: Annotated[
        str, typer.Option("--wandb_project", "-wp", help="W&B project.")
    ] = "fnn",
    wandb_entity: Annotated[
        str | None, typer.Option("--wandb_entity", "-we", help="W&B entity (user or team).")
    ] = None,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help=_choices("dataset"))
    ] = DEFAULT.dataset,
    epochs: Annotated[int, typer.Option("--epochs", "-e", help=">= 1.")] = DEFAULT.epochs,
    batch_size: Annotated[
        int, typer.Option("--batch_size", "-b", help=">= 1.")
    ] = DEFAULT.batch_size,
    loss: Annotated[str, typer.Option("--loss", "-l", help=_choices("loss"))] = DEFAULT.loss,
    optimizer: Annotated[
        str, typer.Option("--optimizer", "-o", help=_choices("optimizer"))
    ] = DEFAULT.optimizer,
    learning_rate: Annotated[
        float, typer.Option("--learning_rate", "-lr", help="> 0.")
    ] = DEFAULT.learning_rate,
    lr_schedule: Annotated[
        str,
        typer.Option("--lr_schedule", help="constant, or cosine decay to 0 over the epochs."),
    ] = DEFAULT.lr_schedule,
    momentum: Annotated[
        float, typer.Option("--momentum", "-m", help="momentum and nag, in [0, 1).")
    ] = DEFAULT.momentum,
    beta: Annotated[
        float, typer.Option("--beta", "-beta", help="rmsprop's decay, in [0, 1).")
    ] = DEFAULT.beta,
    beta1: Annotated[
        float, typer.Option("--beta1", "-beta1", help="adam, nadam, eve; in [0, 1).")
    ] = DEFAULT.beta1,
    beta2: Annotated[
        float, typer.Option("--beta2", "-beta2", help="adam, nadam, eve; in [0, 1).")
    ] = DEFAULT.beta2,
    epsilon: Annotated[
        float, typer.Option("--epsilon", "-eps", help="rmsprop, adam, nadam, eve; > 0.")
    ] = DEFAULT.epsilon,
    weight_decay: Annotated[
        float, typer.Option("--weight_decay", "-w_d", help="Coupled L2, >= 0.")
    ] = DEFAULT.weight_decay,
    weight_init: Annotated[
        str, typer.Option("--weight_init", "-w_i", help=_choices("weight_init"))
    ] = DEFAULT.weight_init,
    num_layers: Annotated[
        int, typer.Option("--num_layers", "-nhl", help="Hidden layers, >= 0.")
    ] = DEFAULT.num_layers,
    hidden_size: Annotated[
        int, typer.Option("--hidden_size", "-sz", help="Width of each hidden layer, >= 1.")
    ] = DEFAULT.hidden_size,
    activation: Annotated[
        str, typer.Option("--activation", "-a", help=_choices("activation"))
    ] = DEFAULT.activation,
    hidden_sizes: Annotated[
        str | None,
        typer.Option("--hidden_sizes", help="e.g. 512,256: overrides --num_layers/--hidden_size."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds init, split and batches.")] = 0,
    val_fraction: Annotated[
        float, typer.Option("--val_fraction", help="Stratified validation share, in (0, 1).")
    ] = DEFAULT.val_fraction,
    train_subset: Annotated[
        int | None, typer.Option("--train_subset", help="Train on a stratified subset of N.")
    ] = None,
    dropout: Annotated[
        float, typer.Option("--dropout", help="Inverted dropout on hidden layers, [0, 1).")
    ] = DEFAULT.dropout,
    patience: Annotated[
        int | None, typer.Option("--patience", help="Early stopping on val loss, epochs.")
    ] = None,
    log_every: Annotated[
        int, typer.Option("--log_every", help="Record the running train loss every N steps.")
    ] = DEFAULT.log_every,
    save: Annotated[
        Path | None, typer.Option("--save", help="Checkpoint folder (params, config, history).")
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data_dir", help="Folder holding mnist/ or fashion-mnist/.")
    ] = None,
    source: Annotated[str, typer.Option("--source", help=_choices("source"))] = DEFAULT.source,
    classes: Annotated[
        str | None,
        typer.Option("--classes", help="Keep only these classes, e.g. automobile,cat."),
    ] = None,
    resize: Annotated[
        int | None,
        typer.Option(
            "--resize", help="Shrink images to N x N by area averaging (N divides the side)."
        ),
    ] = None,
    dtype: Annotated[str, typer.Option("--dtype", help=_choices("dtype"))] = DEFAULT.dtype,
    tracker: Annotated[
        str,
        typer.Option("--tracker", help="wandb (offline without a key or network) or none."),
    ] = "wandb",
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file of option: value; flags win.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")] = False,
) -> None:
    """Train an MLP, report validation and test accuracy, optionally save it."""
    flags = {k: v for k, v in locals().items() if k not in ("ctx", "config")}
    values = _merge(ctx, flags, config)
    if values["save"] is not None:
        values["save"] = str(values["save"])
    try:
        run_training(values, quiet=bool(values.pop("quiet")))
    except ConfigError as error:
        raise UsageFailure(str(error)) from None


@app.command()
def evaluate(
    directory: Annotated[Path, typer.Argument(help="A checkpoint folder from `fnn train --save`.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Default: the one it was trained on.")
    ] = None,
    data_dir: Annotated[str | None, typer.Option("--data_dir")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a confusion-matrix PNG.")
    ] = None,
) -> None:
    """Test loss, accuracy, per-class precision/recall and the confusion matrix of a checkpoint."""
    from fnn import metrics

    try:
        params, config, _ = checkpoint.load(directory)
    except checkpoint.CheckpointError as error:
        raise UsageFailure(str(error)) from None
    settings = {key: value for key, value in config.items() if key in FIELDS and key != "extra"}
    if dataset is not None:
        settings["dataset"] = dataset
    if data_dir is not None:
        settings["data_dir"] = data_dir
    try:
        trained = validate(TrainConfig(**settings))
        splits = load_splits(trained, progress=not as_json)
    except ConfigError as error:
        raise UsageFailure(str(error)) from None
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    name = trained.dataset
    result = metrics.evaluate(
        params,
        splits.x_test,
        splits.y_test,
        activation=config.get("activation", "tanh"),
        loss=config.get("loss", "cross_entropy"),
    )
    names = data.class_names(name, trained.classes)
    report = metrics.report(result, names)
    if plot is not None:
        from fnn import plots

        plot = plots.confusion_figure(result["confusion"], names, plot, title=f"{name} test set")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"{name} test set: loss {report['loss']:.4f}, accuracy {report['accuracy']:.2%}")
    table = Table(title="per class")
    for column in ("class", "precision", "recall", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in report["per_class"]:
        table.add_row(
            row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", str(row["support"])
        )
    console.print(table)
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)")
    matrix.add_column("")
    for index in range(len(names)):
        matrix.add_column(str(index), justify="right")
    for index, row in enumerate(result["confusion"]):
        matrix.add_row(f"{index} {names[index]}", *(str(v) for v in row))
    console.print(matrix)
    pairs = ", ".join(
        f"{p['true']} → {p['predicted']} ({p['count']})" for p in report["most_confused"][:3]
    )
    console.print(f"most confused: {pairs}")
    if plot is not None:
        console.print(f"confusion matrix figure: {plot}")


@app.command()
def samples(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help=_choices("dataset"))
    ] = "fashion_mnist",
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("samples.png"),
    data_dir: Annotated[str | None, typer.Option("--data_dir")] = None,
    log: Annotated[bool, typer.Option("--log", help="Also log the grid to W&B.")] = False,
    wandb_project: Annotated[str, typer.Option("--wandb_project", "-wp")] = "fnn",
    wandb_entity: Annotated[str | None, typer.Option("--wandb_entity", "-we")] = None,
) -> None:
    """One training image per class in a labelled grid."""
    from fnn import plots

    name = dataset.lower()
    if name not in data.DATASETS:
        raise UsageFailure(f"--dataset must be one of {', '.join(data.DATASETS)}; got {dataset!r}")
    try:
        (x_train, y_train), _ = data.load(name, data_dir=data_dir)
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    path = plots.sample_grid(x_train, y_train, data.CLASS_NAMES[name], out, title=name)
    console.print(f"wrote {path}")
    if log:
        tracker = tracking.start(
            "wandb",
            {"dataset": name},
            project=wandb_project,
            entity=wandb_entity,
            name=f"samples_{name}",
            job_type="samples",
            say=lambda line: errors.print(line, highlight=False, markup=False, soft_wrap=True),
        )
        tracker.image("samples", path, caption=f"one {name} training image per class")
        tracker.finish()


@app.command()
def sweep(
    config: Annotated[
        Path | None, typer.Argument(help="A W&B sweep YAML (not needed with --join).")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="local (Optuna), wandb, or auto: wandb with an API key, else local."
        ),
    ] = "auto",
    count: Annotated[
        int | None, typer.Option("--count", help="Trials (runs) for this process to run.")
    ] = None,
    storage: Annotated[
        str, typer.Option("--storage", help="Optuna storage URL (local backend).")
    ] = "sqlite:///sweeps.db",
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (local; default: the YAML's name).")
    ] = None,
    join: Annotated[
        str | None, typer.Option("--join", help="Start another agent on this W&B sweep id.")
    ] = None,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help=_choices("dataset"))
    ] = DEFAULT.dataset,
    train_subset: Annotated[
        int | None, typer.Option("--train_subset", help="Train each trial on N samples.")
    ] = None,
    val_fraction: Annotated[float, typer.Option("--val_fraction")] = DEFAULT.val_fraction,
    data_dir: Annotated[str | None, typer.Option("--data_dir")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampler and data-split seed.")] = 0,
    tracker: Annotated[str, typer.Option("--tracker", help="wandb or none (local).")] = "wandb",
    wandb_project: Annotated[str, typer.Option("--wandb_project", "-wp")] = "fnn",
    wandb_entity: Annotated[str | None, typer.Option("--wandb_entity", "-we")] = None,
) -> None:
    """Run a hyperparameter sweep on W&B agents, or as a local (or shared) Optuna study."""
    from fnn import sweep as sweeps

    backend = backend.lower()
    if backend not in ("auto", "local", "wandb"):
        raise UsageFailure(f"--backend must be one of auto, local, wandb; got {backend!r}")
    if count is not None and count < 1:
        raise UsageFailure(f"--count must be >= 1; got {count}")
    if config is None and join is None:
        raise UsageFailure("give a sweep YAML, or --join SWEEP_ID to help with a W&B sweep")
    base_values = {
        "dataset": dataset,
        "train_subset": train_subset,
        "val_fraction": val_fraction,
        "data_dir": data_dir,
        "seed": seed,
        "tracker": tracker,
    }
    try:
        base_config = build_config(base_values)
        sweep_config = sweeps.load_config(config) if config is not None else None
    except (ConfigError, sweeps.SweepConfigError) as error:
        raise UsageFailure(str(error)) from None
    base = {
        k: getattr(base_config, k)
        for k in ("dataset", "train_subset", "val_fraction", "data_dir", "seed")
    }
    chosen = backend
    if backend == "auto":
        chosen = "wandb" if join or tracking.online_by_default() else "local"
        console.print(f"sweep backend: {chosen}")
    try:
        if chosen == "wandb":
            sweep_id = sweeps.run_wandb(
                sweep_config,
                count=count,
                base=base,
                project=wandb_project,
                entity=wandb_entity,
                sweep_id=join,
            )
            console.print(f"W&B sweep {sweep_id}: more agents with `fnn sweep --join {sweep_id}`")
            return
        if join:
            raise UsageFailure("--join needs the wandb backend")
        name = study or sweep_config.get("name") or config.stem
        result = sweeps.run_local(
            sweep_config,
            count=count,
            base=base,
            storage=storage,
            study_name=name,
            tracker=tracker,
            project=wandb_project,
            entity=wandb_entity,
            seed=seed,
            say=lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True),
        )
    except (ConfigError, sweeps.SweepConfigError) as error:
        raise UsageFailure(str(error)) from None
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    except Exception as error:
        raise _storage_error(error, storage) from None
    trials = sweeps.study_trials(result)
    finished = [t for t in trials if t["state"] == "COMPLETE"]
    console.print(
        f"study {name!r} in {storage}: {len(finished)} complete of {len(trials)} trials; "
        f"report with `fnn sweep-report {name} --storage {storage} --out sweep-report/{name}`"
    )


def _storage_error(error: Exception, storage: str) -> Exception:
    """A one-line usage error for a database URL SQLAlchemy cannot use; other errors as they are."""
    if type(error).__module__.split(".")[0] == "sqlalchemy":
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return UsageFailure(f"--storage {storage}: {first}")
    return error


@app.command("sweep-report")
def sweep_report(
    source: Annotated[
        str, typer.Argument(help="An Optuna study name, or a folder of W&B runs (e.g. ./wandb).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the plots and summary.")] = Path(
        "sweep-report"
    ),
    storage: Annotated[str, typer.Option("--storage")] = "sqlite:///sweeps.db",
    top: Annotated[int, typer.Option("--top", help="Rows in the ranked table.")] = 10,
) -> None:
    """Plots and a summary of a sweep: parallel coordinates, metric by run, importance, top runs."""
    from fnn import sweep as sweeps

    try:
        written = sweeps.report(source, out=out, storage=storage, top=top)
    except sweeps.SweepConfigError as error:
        raise UsageFailure(str(error)) from None
    except Exception as error:
        raise _storage_error(error, storage) from None
    for name, path in written.items():
        console.print(f"{name}: {path}")


@app.command()
def bench(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Layer widths.", callback=_parse_sizes)
    ] = "784,128,128,128,10",
    batch_sizes: Annotated[
        str, typer.Option("--batch_sizes", help="Comma-separated batch sizes.")
    ] = "16,32,64,128,256,512,1024",
    activation: Annotated[str, typer.Option("--activation", "-a")] = "tanh",
    optimizer: Annotated[str, typer.Option("--optimizer", "-o")] = "adam",
    dtype: Annotated[str, typer.Option("--dtype", help="float32|float64")] = "float32",
    samples: Annotated[int, typer.Option("--samples", help="Samples per epoch.")] = 60_000,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed epochs per batch size.")] = 3,
    vs: Annotated[
        str | None,
        typer.Option(
            "--vs",
            help="Peers to time in the same run: torch (PyTorch's eager loop), jax (a jitted "
            "JAX + optax step), or torch,jax.",
        ),
    ] = None,
    dataset: Annotated[
        str,
        typer.Option("--dataset", "-d", help="Real data if found (else synthetic), or synthetic."),
    ] = "fashion_mnist",
    data_dir: Annotated[str | None, typer.Option("--data_dir")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG.")] = None,
) -> None:
    """Time one training epoch per batch size, against the matmul roofline (and PyTorch)."""
    from fnn import bench as benchmark

    dtype = dtype.lower()
    peers = [] if vs is None else [p.strip().lower() for p in vs.split(",") if p.strip()]
    try:
        batches = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise UsageFailure(f"--batch_sizes expects integers, got {batch_sizes!r}") from None
    checks = [
        (batches and min(batches) >= 1, "--batch_sizes must be >= 1"),
        (samples >= 1, "--samples must be >= 1"),
        (repeats >= 1, "--repeats must be >= 1"),
        (set(peers) <= {"torch", "jax"} and (vs is None or peers),
         "--vs must be torch, jax or torch,jax"),
        (dtype in ("float32", "float64"), "--dtype must be float32 or float64"),
        (dataset.lower() in (*data.DATASETS, "synthetic", "none"),
         f"--dataset must be one of {', '.join(data.DATASETS)}, synthetic"),
        (activation.lower() in CHOICES["activation"],
         f"--activation must be one of {', '.join(CHOICES['activation'])}"),
        (optimizer.lower() in CHOICES["optimizer"],
         f"--optimizer must be one of {', '.join(CHOICES['optimizer'])}"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise UsageFailure(message)
    table = Table(
        title=f"fnn bench: MLP {sizes}, {activation}, {optimizer}, {dtype}",
        caption="s/epoch: median; roof: share of the matmul roofline; gemm s: the epoch's "
        "matrix products alone; x gemm, x torch, x jax: fnn's epoch over theirs",
    )
    columns = ["batch", "s/epoch", "min-max", "steps/s", "samples/s", "GFLOP/s", "roof",
               "gemm s", "x gemm"]  # fmt: skip
    for peer in peers:
        columns += [f"{peer} s", f"x {peer}"]
    for column in columns:
        table.add_column(column, justify="right")

    def add_row(row: dict) -> None:
        cells = [
            str(row["batch_size"]),
            f"{row['epoch_seconds']:.3f}",
            f"{row['epoch_min']:.2f}-{row['epoch_max']:.2f}",
            f"{row['steps_per_second']:,.0f}",
            f"{row['samples_per_second']:,.0f}",
            f"{row['gflops']:.1f}",
            f"{row['roofline_fraction']:.0%}",
        ]
        for peer in ("gemm", *peers):
            if f"{peer}_epoch_seconds" in row:
                cells += [f"{row[f'{peer}_epoch_seconds']:.3f}", f"{row[f'ratio_to_{peer}']:.2f}"]
            else:
                cells += ["-", "-"]
        table.add_row(*cells)

    with console.status("timing...", spinner="dots") if not as_json else _nothing():
        result = benchmark.run(
            sizes,
            batch_sizes=batches,
            activation=activation.lower(),
            optimizer=optimizer.lower(),
            dtype=dtype,
            samples=samples,
            repeats=repeats,
            vs_torch="torch" in peers,
            vs_jax="jax" in peers,
            dataset=dataset.lower() if dataset.lower() in data.DATASETS else None,
            data_dir=data_dir,
            on_row=None if as_json else add_row,
        )
    if plot is not None:
        from fnn import plots

        plots.bench_figure(result, plot)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(table)
    console.print(
        f"data: {result['data']}, {result['samples']} samples; "
        f"{result['flops_per_sample'] / 1e6:.2f} MFLOP per sample; matmul roofline "
        f"{result['roofline_gflops']:.0f} GFLOP/s; BLAS: {result['blas']}; {result['machine']}"
    )
    if "torch" in peers and not result["torch"]:
        console.print(
            "torch: not installed (pip install torch) or no equivalent of this optimizer; "
            "no comparison",
            soft_wrap=True,
        )
    if "jax" in peers and not result["jax"]:
        console.print(
            f"jax: not installed ({benchmark.JAX_INSTALL}) or no equivalent of this optimizer; "
            "no comparison",
            soft_wrap=True,
            markup=False,
        )
    if plot is not None:
        console.print(f"figure: {plot}")


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@app.command()
def gradcheck(
    sizes: Annotated[
        str, typer.Option(help="Layer widths n_in,h1,...,n_out.", callback=_parse_sizes)
    ] = "20,16,12,10",
    activation: Annotated[
        str,
        typer.Option(
            help=f"Hidden activation: {', '.join(activations.ACTIVATIONS)}; 'all' checks each.",
        ),
    ] = "all",
    loss: Annotated[
        str,
        typer.Option(help=f"Loss: {', '.join(losses.LOSSES)}; 'all' checks each."),
    ] = "all",
    batch_size: Annotated[
        int, typer.Option("--batch_size", min=1, help="Samples in the checked batch.")
    ] = 8,
    eps: Annotated[float, typer.Option(help="Finite-difference step (> 0).")] = 1e-6,
    seed: Annotated[int, typer.Option(min=0, help="Seed for weights and data.")] = 0,
) -> None:
    """Compare the hand-written gradients with central differences (float64), per leaf."""
    if eps <= 0:
        raise typer.BadParameter(f"must be > 0, got {eps}", param_hint="--eps")
    names = (
        list(activations.ACTIVATIONS)
        if activation == "all"
        else [_choice(activation, activations.ACTIVATIONS, "activation")]
    )
    loss_names = list(losses.LOSSES) if loss == "all" else [_choice(loss, losses.LOSSES, "loss")]
    rng = np.random.default_rng(seed)
    params = init_mlp(sizes, seed=rng, dtype=np.float64)
    x = rng.standard_normal((batch_size, sizes[0]))
    y = rng.integers(0, sizes[-1], batch_size)

    table = Table(title=f"max relative gradient error, sizes {sizes}, batch {batch_size}")
    table.add_column("activation")
    table.add_column("loss")
    table.add_column("worst leaf")
    table.add_column("max rel. error", justify="right")
    worst_overall = 0.0
    for name in names:
        for loss_name in loss_names:
            errors = run_gradcheck(params, x, y, activation=name, loss=loss_name, eps=eps)
            leaf, worst = max(errors.items(), key=lambda item: item[1])
            worst_overall = max(worst_overall, worst)
            table.add_row(name, loss_name, leaf, f"{worst:.2e}")
    console.print(table)
    console.print(f"worst: {worst_overall:.2e}")


@app.command()
def study(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for figures, tables, SUMMARY.md.")
    ] = Path("study"),
    budget: Annotated[
        str, typer.Option("--budget", help="quick (minutes) or full (~75 min on 2 cores).")
    ] = "quick",
    data_dir: Annotated[
        str | None, typer.Option("--data_dir", help="Folder holding mnist/ and fashion-mnist/.")
    ] = None,
    tracker: Annotated[
        str, typer.Option("--tracker", help="wandb (offline without a key) or none.")
    ] = "wandb",
    wandb_project: Annotated[str, typer.Option("--wandb_project", "-wp")] = "fnn",
    train_subset: Annotated[
        int | None,
        typer.Option("--train_subset", help="Cap every training set (a fast smoke test)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
) -> None:
    """Reproduce the study: samples, optimizers, sweeps, best model, losses, MNIST, presets,
    fnn vs PyTorch; writes OUT/SUMMARY.md."""
    import optuna

    from fnn import study as studies

    budget, tracker = budget.lower(), tracker.lower()
    checks = [
        (budget in studies.BUDGETS, f"--budget must be one of {', '.join(studies.BUDGETS)}"),
        (tracker in tracking.TRACKERS, f"--tracker must be one of {', '.join(tracking.TRACKERS)}"),
        (train_subset is None or train_subset >= 20, "--train_subset must be >= 20"),
        (data_dir is None or Path(data_dir).expanduser().is_dir(),
         f"--data_dir must be an existing folder; {data_dir} is not one"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise UsageFailure(message)
    if tracker == "wandb" and not os.environ.get("WANDB_DIR"):
        os.environ["WANDB_DIR"] = str(Path(out).resolve())  # the study's runs go with it
    try:
        studies.run(
            out,
            budget=budget,
            data_dir=data_dir,
            tracker=tracker,
            train_subset=train_subset,
            seed=seed,
            project=wandb_project,
            say=lambda line: console.print(line, highlight=False, markup=False),
            progress=console.is_terminal,
        )
    except (studies.StudyError, data.DataError, TrainingDiverged) as error:
        raise RunFailure(str(error)) from None
    except optuna.exceptions.StorageInternalError as error:
        raise RunFailure(f"the sweep storage in {out} failed: {error}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors become one line on stderr (exit 2: bad input, 1: failed run)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        result = app(args=args or ["--help"], prog_name="fnn", standalone_mode=False)
    except typer.Abort:
        errors.print("aborted", highlight=False)
        return 130
    except typer.TyperException as error:  # click's usage errors, as Typer vendors them
        context = getattr(error, "ctx", None)
        prefix = f"{context.command_path}: " if context is not None else "fnn: "
        errors.print(
            f"{prefix}{error.format_message()}", highlight=False, markup=False, soft_wrap=True
        )
        return error.exit_code
    except UsageFailure as error:
        errors.print(f"fnn: {error}", highlight=False, markup=False, soft_wrap=True)
        return 2
    except RunFailure as error:
        errors.print(f"fnn: {error}", highlight=False, markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        errors.print("interrupted", highlight=False)
        return 130
    return result if isinstance(result, int) else 0
