"""``fnn sweep``, ``fnn sweep-report`` and ``fnn study``: many runs, and what they found."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from fnn import data, tracking
from fnn.cli.base import DEFAULT, RunFailure, UsageFailure, app, console, say
from fnn.cli.options import DataDir, accepts
from fnn.cli.training import build_config
from fnn.train import (
    ConfigError,
    TrainingDiverged,
)


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
        int | None,
        typer.Option("--count", help="Trials (runs) to run, in total across workers."),
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
        str, typer.Option("--dataset", "-d", help=accepts("dataset"))
    ] = DEFAULT.dataset,
    train_subset: Annotated[
        int | None, typer.Option("--train_subset", help="Train each trial on N samples.")
    ] = None,
    val_fraction: Annotated[float, typer.Option("--val_fraction")] = DEFAULT.val_fraction,
    data_dir: DataDir = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Sampler and data-split seed (default: a fresh sampler seed "
            "per worker, data split 0).",
        ),
    ] = None,
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
    base_values = {"dataset": dataset, "train_subset": train_subset,
                   "val_fraction": val_fraction, "data_dir": data_dir,
                   "seed": DEFAULT.seed if seed is None else seed,
                   "tracker": tracker}  # fmt: skip
    try:
        base_config = build_config(base_values)
        sweep_config = sweeps.load_config(config) if config is not None else None
    except (ConfigError, sweeps.SweepConfigError) as error:
        raise UsageFailure(str(error)) from None
    base = {k: getattr(base_config, k) for k in base_values if k != "tracker"}
    chosen = backend
    if backend == "auto":
        chosen = "wandb" if join or tracking.online_by_default() else "local"
        console.print(f"sweep backend: {chosen}")
    if join and chosen != "wandb":
        raise UsageFailure("--join needs the wandb backend")
    try:
        if chosen == "wandb":
            sweep_id = sweeps.run_wandb(sweep_config, count=count, base=base,
                                        project=wandb_project, entity=wandb_entity,
                                        sweep_id=join)  # fmt: skip
            console.print(f"W&B sweep {sweep_id}: more agents with `fnn sweep --join {sweep_id}`")
            return
        name = study or sweep_config.get("name") or config.stem
        result = sweeps.run_local(
            sweep_config, count=count, base=base, storage=storage, study_name=name,
            tracker=tracker, project=wandb_project, entity=wandb_entity, seed=seed,
            say=_with_dashboard(name, storage),
        )  # fmt: skip
    except (ConfigError, sweeps.SweepConfigError) as error:
        raise UsageFailure(str(error)) from None
    except data.DataError as error:
        raise RunFailure(str(error)) from None
    except Exception as error:
        raise _storage_error(error, storage) from None
    _print_study(sweeps.study_trials(result), name, storage)


def _print_study(trials: list[dict], name: str, storage: str) -> None:
    finished = [t for t in trials if t["state"] == "COMPLETE"]
    say(
        f"study {name!r} in {storage}: {len(finished)} complete of {len(trials)} trials; "
        f"report with `fnn sweep-report {name} --storage {storage} --out sweep-report/{name}`"
    )


def _with_dashboard(name: str, storage: str):
    """``say``, which adds after the study's first line (so only once the database has opened)
    the command that shows the study live in a browser (``say`` hides a password)."""

    def say_and_tell(line: str) -> None:
        say(line)
        if line.startswith(f"study {name}: "):  # run_local's first line, said once
            say(f"watch it live: optuna-dashboard {storage}  (then open http://127.0.0.1:8080; "
                "it comes with pip install 'fnn[dashboard]')")  # fmt: skip

    return say_and_tell


def _storage_error(error: Exception, storage: str) -> Exception:
    """One line for an error whose cause is the database: a database URL SQLAlchemy cannot use
    (exit 2), a SQLite file deleted while the sweep ran, or a database that failed or went away
    (exit 1, naming the database's own error); other errors as they are."""
    import sqlalchemy

    from fnn.sweep.optuna_storage import sqlite_path

    chain, cause = [], error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    raised = [(type(c).__module__.split(".")[0], c) for c in chain]
    if not any(module in ("sqlalchemy", "optuna") for module, _ in raised):
        return error
    path = sqlite_path(storage)
    if path is not None and not path.exists():
        return RunFailure(f"--storage {storage}: the database file {path} is gone (deleted "
                          "while fnn used it?); the trials it held went with it")  # fmt: skip
    database = [c for module, c in raised if module == "sqlalchemy"]
    if not database:
        return error
    own = getattr(database[0], "orig", None) or database[0]  # the driver's error, if any
    first = str(own).splitlines()[0] if str(own) else type(own).__name__
    if isinstance(database[0], sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        return UsageFailure(f"--storage {storage}: {first}")
    return RunFailure(f"--storage {storage}: the database failed ({type(own).__name__}: "
                      f"{first})")  # fmt: skip


@app.command("sweep-report")
def sweep_report(
    source: Annotated[
        str, typer.Argument(help="An Optuna study name, or a folder of W&B runs (e.g. ./wandb).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the plots and summary.")] = Path(
        "sweep-report"
    ),
    storage: Annotated[str, typer.Option("--storage")] = "sqlite:///sweeps.db",
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the ranked table.")] = 10,
) -> None:
    """Plots and a summary of a sweep: parallel coordinates, metric by run, importance, top runs."""
    from fnn import sweep as sweeps

    if out.exists() and not out.is_dir():
        raise UsageFailure(f"--out {out}: is a file; the report is a folder of files, give one")
    try:
        written = sweeps.report(source, out=out, storage=storage, top=top)
    except sweeps.SweepConfigError as error:
        raise UsageFailure(str(error)) from None
    except OSError as error:
        reason = error.strerror or error
        raise UsageFailure(f"--out {out}: cannot write the report there ({reason})") from None
    except Exception as error:
        raise _storage_error(error, storage) from None
    for name, path in written.items():
        console.print(f"{name}: {path}")


@app.command()
def study(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for figures, tables, SUMMARY.md (default: a new "
            "study-BUDGET-DATE-TIME); the same folder again continues its study.",
        ),
    ] = None,
    budget: Annotated[
        str, typer.Option("--budget", help="quick (minutes) or full (~75 min on 2 cores).")
    ] = "quick",
    data_dir: DataDir = None,
    tracker: Annotated[
        str, typer.Option("--tracker", help="wandb (offline without a key) or none.")
    ] = "wandb",
    wandb_project: Annotated[str, typer.Option("--wandb_project", "-wp")] = "fnn",
    train_subset: Annotated[
        int | None,
        typer.Option("--train_subset", help="Cap every training set (a fast smoke test)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Let --out replace a study of another budget.")
    ] = False,
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
    if out is None:
        out = Path(f"study-{budget}-{time.strftime('%Y%m%d-%H%M%S')}")
        console.print(f"writing the study into {out}/", highlight=False, markup=False)
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
            say=say,
            progress=console.is_terminal,
            overwrite=overwrite,
        )
    except (studies.StudyError, data.DataError, TrainingDiverged) as error:
        raise RunFailure(str(error)) from None
    except optuna.exceptions.StorageInternalError as error:
        raise RunFailure(f"the sweep storage in {out} failed: {error}") from None
