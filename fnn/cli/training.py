"""``fnn train``, ``fnn evaluate`` and ``fnn samples``: training a configuration, and looking
at a checkpoint or at the data."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from fnn import checkpoint, data, fused, tracking
from fnn.bench import blas_threads
from fnn.cli.base import (
    Interrupted,
    RunFailure,
    StopSignals,
    UsageFailure,
    app,
    console,
    fail,
    stopped_by,
)
from fnn.cli.options import CLI_ONLY, DataDir, accepts, extra_hyperparameters, train_parameters
from fnn.cli.runs import Saver, check_data, resumed_run
from fnn.train import (
    FIELDS,
    ConfigError,
    ResumeError,
    TrainConfig,
    TrainingDiverged,
    check_memory,
    check_resume,
    load_splits,
    read_settings,
    validate,
)


def _read_config_file(path: Path) -> dict[str, Any]:
    """``--config``'s mapping of option: value, or one line saying what is wrong and where."""
    valid = (FIELDS | set(CLI_ONLY) | set(extra_hyperparameters())) - {"extra", "config"}
    try:
        return read_settings(path, valid)
    except ValueError as error:
        raise UsageFailure(f"--config {path}: {error}") from None


def _merge(ctx: typer.Context, flags: dict[str, Any], config_file: Path | None) -> dict[str, Any]:
    """Defaults, then the values of ``--config``, then the flags given on the command line."""
    from_file = _read_config_file(config_file) if config_file else {}
    merged = {}
    for name, value in flags.items():
        merged[name] = value if _given(ctx, name) or name not in from_file else from_file[name]
    return merged


def build_config(values: dict[str, Any]) -> TrainConfig:
    """A validated ``TrainConfig`` from merged option values (CLI-only keys go to ``extra``,
    the hyperparameters that are not fields to ``hparams``)."""
    fields = {k: v for k, v in values.items() if k in FIELDS and k not in ("extra", "hparams")}
    hparams = dict(values.get("hparams") or {})
    hparams.update({k: values[k] for k in extra_hyperparameters() if values.get(k) is not None})
    fields["hparams"] = hparams
    kind = str(values.get("tracker", "wandb")).lower()
    values["tracker"] = kind
    if kind not in tracking.TRACKERS:
        raise ConfigError("tracker", f"must be one of {', '.join(tracking.TRACKERS)}; got {kind!r}")
    data_dir = values.get("data_dir")
    if data_dir is not None and not Path(str(data_dir)).expanduser().is_dir():
        raise ConfigError("data_dir", f"must be an existing folder; {data_dir} is not one")
    extra = {k: v for k, v in values.items() if k in CLI_ONLY and k not in ("quiet", "config")}
    # bit-identical results need the same seed, machine and BLAS thread count: record the last
    extra["blas"] = blas_threads()
    return validate(TrainConfig(**fields, extra=extra))


def duration(seconds: float) -> str:
    """``12.3 s``, or ``40 ms`` below a tenth of a second (a tiny run is not ``0.0 s``)."""
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


def _print_epoch(record: dict[str, Any]) -> None:
    console.print(
        f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f} "
        f"acc {record['train_accuracy']:.2%}  val loss {record['val_loss']:.4f} "
        f"acc {record['val_accuracy']:.2%}  ({duration(record['seconds'])})"
    )


def run_training(
    values: dict[str, Any], *, quiet: bool = False, given: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Train (or, with ``resume``, continue a saved run), evaluate on the test set once, and
    save after every epoch if asked; returns the summary. ``given``: the options the user set.
    The run folder is held (``checkpoint.RunLock``) from before the first save to the end, and
    SIGINT, SIGTERM and SIGHUP end the run as Ctrl-C does."""
    lock, run = None, {}
    try:
        with StopSignals() as signals:
            try:
                with signals.held():  # a signal waits until the folder is held (and is freed)
                    lock, values, resumed = _claim(values, given)
                return _run(values, resumed, quiet, signals, run)
            except KeyboardInterrupt as error:  # before training, or after it
                signum = getattr(error, "signum", signal.SIGINT)
                if "saver" in run:
                    raise run["saver"].interrupted(signum) from None
                raise Interrupted(f"{stopped_by(signum)} before training; nothing was saved",
                                  signum) from None  # fmt: skip
    finally:
        if lock is not None:
            lock.release()


def _claim(values: dict[str, Any], given: frozenset[str]):
    """The run folder locked for this process, the values with a resumed run's settings, and
    the resumed run (None for a new one); one line (``UsageFailure``) for a folder that may
    not be written or resumed."""
    lock, resumed = None, None
    try:
        if values.get("resume") is not None:
            directory = Path(values["resume"]).expanduser()
            if directory.is_dir():  # (resumed_run says what is wrong with anything else)
                lock = checkpoint.RunLock(directory, "--resume").acquire()
            resumed = resumed_run(directory, values, set(given))
            values = {**values, **resumed["settings"], "save": str(directory)}
        elif values.get("save"):
            checkpoint.check_writable(values["save"])
            lock = checkpoint.RunLock(values["save"]).acquire()
        if values.get("save"):
            run_id = resumed["state"].get("run_id") if resumed else None
            checkpoint.check_target(values["save"], run_id,
                                    overwrite=bool(values.get("overwrite")))  # fmt: skip
    except (checkpoint.CheckpointError, UsageFailure, OSError) as error:
        if lock is not None:
            lock.release()
        if isinstance(error, OSError):
            option = "--resume" if values.get("resume") is not None else "--save"
            where = values.get("resume") or values.get("save")
            raise UsageFailure(f"{option} {where}: {error.strerror or error}") from None
        raise UsageFailure(str(error)) from None
    return lock, values, resumed


def _run(values: dict[str, Any], resumed, quiet: bool, signals: StopSignals, run: dict):
    """``run_training`` once the folder is held: data, checks, W&B, training, test, save;
    ``run["saver"]`` is the run's ``Saver`` once there is one."""
    config = build_config(values)
    if resumed is not None:
        config = dataclasses.replace(config, extra=resumed["extra"])
    save_dir = values.get("save")
    state = resumed["state"] if resumed else {}
    splits = _splits(config, show_progress=not quiet and console.is_terminal, quiet=quiet)
    fingerprint = data.fingerprint(splits)
    classes = len(data.class_names(config.dataset, config.classes))
    check_memory(config, splits.x_train.shape[1], classes)  # before a W&B run is started
    if resumed is not None:
        check_data(Path(save_dir), state.get("data"), fingerprint,
                   changed_ok=bool(values.get("data_changed_ok")), say=fail)  # fmt: skip
        try:
            check_resume(config, splits, (state["training"], resumed["arrays"]))
        except ResumeError as error:
            raise UsageFailure(f"--resume {save_dir}: {error}") from None
    tracker = tracking.start(
        values.get("tracker", "wandb"), config.to_dict(),
        project=values.get("wandb_project") or "fnn", entity=values.get("wandb_entity"),
        run_id=state.get("wandb_run_id"),
        say=fail, announce=(lambda line: None) if quiet else fail,
    )  # fmt: skip
    saver = Saver(save_dir, config, tracker, run_id=state.get("run_id"), data=fingerprint,
                  overwrite=bool(values.get("overwrite")), held=signals.held, check=signals.check,
                  say=fail)  # fmt: skip
    if resumed is not None:  # what the run has saved counts, should no epoch be left to train
        saver.latest = (state["training"], resumed["arrays"])
        saver.saved_epoch = state["training"]["epoch"]
    run["saver"] = saver
    params, history, summary = _train_and_test(config, splits, tracker, saver, resumed, quiet)
    console.print(
        f"val accuracy {summary['val_accuracy']:.2%}  test accuracy {summary['test_accuracy']:.2%}"
        f"  (test loss {summary['test_loss']:.4f}; {duration(summary['train_seconds'])} training)"
    )
    path = saver.final(params, history)
    signals.check()  # one that came during the test or the final save, its exception ignored
    if path is not None and not quiet:
        console.print(f"saved to {path} (inspect with `fnn evaluate {path}`)")
    return summary


def _splits(config: TrainConfig, *, show_progress: bool, quiet: bool) -> data.Splits:
    """The data of ``config``, and the line that says what is trained on what."""
    try:
        splits = load_splits(config, progress=show_progress)
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    if not quiet:
        classes = len(data.class_names(config.dataset, config.classes))
        sizes = [splits.x_train.shape[1], *config.hidden_layers(), classes]
        console.print(f"{config.dataset}: {len(splits.y_train)} train, {len(splits.y_val)} val, "
                      f"{len(splits.y_test)} test; {describe(config, sizes)}", highlight=False,
                      markup=False)  # fmt: skip
    return splits


def describe(config: TrainConfig, sizes: list[int]) -> str:
    """The whole configuration of a run in one line, as the start of ``fnn train`` shows it."""
    hparams = ", ".join(f"{name} {value:g}" for name, value in config.optimizer_hparams().items())
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    stop = f", early stopping after {config.patience}" if config.patience else ""
    return (
        f"MLP {sizes} {config.activation}, dropout {config.dropout:g}, {config.weight_init} "
        f"init, {config.dtype}; {config.optimizer} ({hparams}), {config.lr_schedule} schedule; "
        f"{config.loss}; batch {config.batch_size}, {epochs}{stop}, seed {config.seed}; "
        f"updates {fused.describe()}"
    )


def _train_and_test(config, splits, tracker, saver: Saver, resumed, quiet: bool):
    """``fit`` (saving every epoch through ``saver``), then the test set; the tracker is
    finished as the run ends: interrupted (255), failed (1) or done (0)."""
    from fnn import metrics
    from fnn.train import fit

    exit_code = 1
    try:
        params, history = fit(
            config, splits, tracker=tracker, progress=not quiet and console.is_terminal,
            on_epoch=None if quiet else _print_epoch, on_checkpoint=saver,
            resume=None if resumed is None else (resumed["state"]["training"], resumed["arrays"]),
        )  # fmt: skip
        test = metrics.evaluate(
            params, splits.x_test, splits.y_test, activation=config.activation, loss=config.loss
        )
        summary = _summarise(config, history, test)
        tracker.summary(summary)
        _log_confusion(tracker, splits.y_test, test, data.class_names(config.dataset,
                       config.classes), config.dataset)  # fmt: skip
        exit_code = 0
    except KeyboardInterrupt as error:
        exit_code = 255
        raise saver.interrupted(getattr(error, "signum", signal.SIGINT)) from None
    except TrainingDiverged as error:
        raise RunFailure(str(error)) from None
    except ResumeError as error:
        raise UsageFailure(f"--resume {saver.directory}: {error}") from None
    finally:
        with saver.held():  # W&B's record of how the run ended is written whole
            tracker.finish(exit_code)
    history["test"] = {"loss": test["loss"], "accuracy": test["accuracy"]}
    return params, history, summary


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


def train(ctx: typer.Context, **options: Any) -> None:
    """Train an MLP, report validation and test accuracy, optionally save it (after every
    epoch, so that --resume can continue it). Beyond the assignment's flags, fnn's defaults
    add dropout 0.2 and a cosine learning-rate decay (--dropout 0 --lr_schedule constant
    for neither); the start line lists every setting, and ends with the path the updates take
    (fused by numba when it is installed; FNN_FUSED=0 for NumPy's passes: the same numbers)."""
    config_file = options.pop("config")
    values = _merge(ctx, options, config_file)
    given = {name for name in options if _given(ctx, name)}
    if config_file is not None:
        given |= set(_read_config_file(config_file))
    for name in ("save", "resume"):
        if values[name] is not None:
            values[name] = str(values[name])
    try:
        run_training(values, quiet=bool(values.pop("quiet")), given=frozenset(given))
    except ConfigError as error:
        raise UsageFailure(str(error)) from None


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


# The options are built from the settings' table when the command line starts, so an optimizer
# added to the registry before then brings its hyperparameters, ranges and help with it.
train.__signature__ = inspect.Signature(
    [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
     *train_parameters()]
)  # fmt: skip
app.command()(train)


@app.command()
def evaluate(
    directory: Annotated[Path, typer.Argument(help="A checkpoint folder from `fnn train --save`.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Default: the one it was trained on.")
    ] = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a confusion-matrix PNG.")
    ] = None,
) -> None:
    """Test loss, accuracy, per-class precision/recall and the confusion matrix of a checkpoint."""
    from fnn import metrics

    figure = None if plot is None else figure_path(plot, "confusion.png", "--plot")
    params, trained, splits = _checkpoint_and_data(directory, dataset, data_dir, not as_json)
    name = trained.dataset
    result = metrics.evaluate(params, splits.x_test, splits.y_test,
                              activation=trained.activation, loss=trained.loss)  # fmt: skip
    names = data.class_names(name, trained.classes)
    report = metrics.report(result, names)
    if figure is not None:
        from fnn import plots

        figure = plots.confusion_figure(result["confusion"], names, figure,
                                        title=f"{name} test set")  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_report(name, report, result, names)
    if figure is not None:
        console.print(f"confusion matrix figure: {figure}")


# What a config.json written by `fnn train` always holds, and evaluation cannot guess
RECORDED = ("dataset", "activation", "loss", "hidden_sizes")


def _checkpoint_and_data(directory: Path, dataset, data_dir, progress: bool):
    """The checkpoint's params and validated config, checked against each other and against the
    data (its test split loaded); one line naming the file for anything that does not fit."""
    try:
        params, config, _ = checkpoint.load(directory, history=False)
    except checkpoint.CheckpointError as error:
        raise UsageFailure(str(error)) from None
    missing = [key for key in RECORDED if key not in config]
    if missing:
        raise UsageFailure(f"{directory}/config.json: lacks {', '.join(missing)} (not written by "
                           "fnn train; nothing to evaluate it with)")  # fmt: skip
    settings = {key: value for key, value in config.items() if key in FIELDS and key != "extra"}
    settings.update({k: v for k, v in (("dataset", dataset), ("data_dir", data_dir)) if v})
    try:
        trained = validate(TrainConfig(**settings))
    except (ConfigError, TypeError) as error:
        raise UsageFailure(f"{directory}/config.json: {str(error).removeprefix('--')}") from None
    try:
        splits = load_splits(trained, progress=progress)
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    classes = len(data.class_names(trained.dataset, trained.classes))
    sizes = [splits.x_test.shape[1], *trained.hidden_layers(), classes]
    pairs = enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    expected = {f"layer_{i}": {"b": (o,), "w": (n, o)} for i, (n, o) in pairs}
    found = {k: {leaf: np.shape(a) for leaf, a in v.items()} for k, v in params.items()}
    if found != expected:
        raise UsageFailure(f"{directory}/params.npz: shapes {found} do not fit the network "
                           f"{sizes} of config.json and the data")  # fmt: skip
    return params, trained, splits


def _print_report(name: str, report: dict, result: dict, names: list[str]) -> None:
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


# What matplotlib can write (FigureCanvasBase.get_supported_filetypes(), checked by a test):
# named here, so that a bad name is refused before matplotlib is imported
FIGURE_FORMATS = ("avif", "eps", "gif", "jpeg", "jpg", "pdf", "pgf", "png", "ps", "raw", "rgba",
                  "svg", "svgz", "tif", "tiff", "webp")  # fmt: skip


def figure_path(path: Path, default_name: str, option: str) -> Path:
    """Where a figure asked for with ``option PATH`` goes: into PATH when it is a folder, with
    ``.png`` added when PATH has no suffix; ``UsageFailure`` now, before any work, when it
    cannot be written there."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / default_name
    elif not path.suffix:
        path = path.with_suffix(".png")
    if path.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise UsageFailure(f"{option} {path}: cannot draw a {path.suffix} file; give a name "
                           f"ending in {', '.join('.' + k for k in FIGURE_FORMATS)}")  # fmt: skip
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if (
        not folder.is_dir()
        or not os.access(folder, os.W_OK | os.X_OK)
        or (path.exists() and not os.access(path, os.W_OK))
        or not _can_create_in(folder)
    ):
        raise UsageFailure(f"{option} {path}: cannot write there (no permission, or not a folder)")
    return path


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (tried: ``/proc`` passes the permission check)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@app.command()
def samples(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help=accepts("dataset"))
    ] = "fashion_mnist",
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("samples.png"),
    data_dir: DataDir = None,
    log: Annotated[bool, typer.Option("--log", help="Also log the grid to W&B.")] = False,
    wandb_project: Annotated[str, typer.Option("--wandb_project", "-wp")] = "fnn",
    wandb_entity: Annotated[str | None, typer.Option("--wandb_entity", "-we")] = None,
) -> None:
    """One training image per class in a labelled grid."""
    from fnn import plots

    name = dataset.lower()
    if name not in data.DATASETS:
        raise UsageFailure(f"--dataset must be one of {', '.join(data.DATASETS)}; got {dataset!r}")
    out = figure_path(out, "samples.png", "--out")
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
            say=fail,
        )
        tracker.image("samples", path, caption=f"one {name} training image per class")
        tracker.finish()
