"""The W&B backend: a sweep created on (or joined from) a W&B server and run by a local
``wandb.agent`` (``run_wandb``), and a folder of W&B runs read back as trials
(``wandb_trials``) with ``wandb leet inspect``.

wandb is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fnn import tracking
from fnn.constraints import is_number
from fnn.sweep.config import METRICS, SweepConfigError, load_config, sweepable
from fnn.sweep.training import check_base, new_history, run_summary, train, train_config
from fnn.train import ConfigError, TrainingDiverged

INSPECT_TIMEOUT = 120.0  # seconds for one `wandb leet inspect`


def wandb_config(config: dict) -> dict:
    """The dict for ``wandb.sweep``: the validated configuration in W&B's plainest forms
    (``values``, ``value``, or ``distribution`` with ``min``/``max``)."""
    config = copy.deepcopy(config)
    for name, spec in config["parameters"].items():
        distribution = spec["distribution"]
        if distribution == "categorical":
            config["parameters"][name] = {"values": spec["values"]}
        elif distribution == "constant":
            config["parameters"][name] = {"value": spec["value"]}
    return config


def agent_function(
    base: dict,
    metric: str,
    *,
    progress: bool = False,
    say: Callable[[str], None] = tracking.print_error,
) -> Callable[[], None]:
    """The function ``wandb.agent`` calls once per run: it reads the sweep's values from
    ``wandb.init().config``, trains ``base`` updated with them and records the run."""
    base = check_base(base)
    if metric not in METRICS:
        raise SweepConfigError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")

    def run_once() -> None:
        import wandb

        run = wandb.init()
        values = {key: value for key, value in dict(run.config).items() if key[0] != "_"}
        unknown = sorted(set(values) - sweepable())
        try:
            if unknown:
                raise SweepConfigError(
                    f"sweep parameter(s) {', '.join(unknown)} are not training options"
                )
            config = train_config(base, values)
        except (SweepConfigError, ConfigError) as error:
            say(f"skipping run {run.id}: {error}")
            run.finish(exit_code=1)
            return
        run.name = tracking.run_name(config.to_dict())
        run.config.update(config.to_dict(), allow_val_change=True)
        tracker = tracking.WandbTracker(run, warn=say)
        history = new_history()
        try:
            train(config, tracker, history, progress=progress)
        except TrainingDiverged as error:
            say(f"run {run.name}: {error}")
            tracker.summary(run_summary(history, metric, "FAIL", error=str(error)))
            run.finish(exit_code=1)
            return
        tracker.summary(run_summary(history, metric, "COMPLETE"))
        tracker.finish()

    return run_once


def run_wandb(
    config: str | os.PathLike | dict | None,
    *,
    count: int | None,
    base: dict,
    project: str | None = None,
    entity: str | None = None,
    sweep_id: str | None = None,
    progress: bool = False,
) -> str:
    """Create a sweep on the W&B server (or, given ``sweep_id``, join one; ``config`` may then
    be None) and run a local agent that trains ``count`` runs (None: until the server says the
    sweep is done). Returns the sweep id. W&B sweeps need a server: without one this raises
    ``SweepConfigError`` pointing at ``--backend local``. ``project``/``entity`` default to
    the sweep file's, then "fnn"."""
    import wandb

    if config is None and sweep_id is None:
        raise SweepConfigError("a W&B sweep needs a sweep configuration, or the id of one to join")
    sweep = load_config(config) if config is not None else {}
    metric = sweep["metric"]["name"] if sweep else "val_accuracy"  # the server knows its own
    base = check_base(base)
    project = project or sweep.get("project") or "fnn"
    entity = entity or sweep.get("entity")
    try:
        if sweep_id is None:
            sweep_id = wandb.sweep(wandb_config(sweep), project=project, entity=entity)
        wandb.agent(
            sweep_id,
            function=agent_function(base, metric, progress=progress),
            count=count,
            project=project,
            entity=entity,
        )
    except (wandb.errors.UsageError, wandb.errors.CommError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SweepConfigError(
            f"W&B sweeps need a W&B server ({first_line}); run `wandb login`, "
            "or use the offline backend (--backend local)"
        ) from None
    return sweep_id


# --- reading runs back -------------------------------------------------------------------------


def _run_dirs(folder: Path) -> list[Path]:
    runs = [
        path
        for path in sorted(folder.iterdir())
        if path.is_dir() and not path.is_symlink() and re.match(r"(offline-)?run-", path.name)
    ]
    if not runs and (folder / "wandb").is_dir():
        return _run_dirs(folder / "wandb")
    if not runs and list(folder.glob("*.wandb")):
        return [folder]
    return runs


def inspect_run(run_dir: str | os.PathLike) -> dict | None:
    """``wandb leet inspect --summary --json`` of one run directory (name, config, summary,
    state, ...), or None when it cannot be read."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json"]
    try:
        result = subprocess.run(
            [*command, str(run_dir)],
            capture_output=True,
            text=True,
            timeout=INSPECT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        info, _ = json.JSONDecoder().raw_decode(result.stdout.lstrip())
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _run_state(info: dict) -> str:
    summary = info.get("summary") or {}
    if summary.get("sweep_state"):
        return summary["sweep_state"]
    state = info.get("state")
    if state == "finished" and not info.get("exit_code"):
        return "COMPLETE"
    return "RUNNING" if state == "running" else "FAIL"


def wandb_trials(folder: str | os.PathLike, *, metric: str = "val_accuracy") -> list[dict]:
    """The runs in a W&B folder (``offline-run-*``/``run-*``, e.g. ``./wandb``) as trial dicts
    like ``study_trials``, numbered in start order, with every training option of the config
    and ``sweep``, the study name of a ``run_local`` trial."""
    runs = _run_dirs(Path(folder))
    with ThreadPoolExecutor(max_workers=4) as pool:
        infos = [info for info in pool.map(inspect_run, runs) if info is not None]
    infos.sort(key=lambda info: str(info.get("start_time", "")))
    rows = []
    for number, info in enumerate(infos):
        summary, config = info.get("summary") or {}, info.get("config") or {}
        settings = {**config, **(config.get("hparams") or {})}  # hparams: eve's beta3, ...
        value = summary.get(metric)
        rows.append(
            {
                "number": number,
                "state": _run_state(info),
                "value": float(value) if is_number(value) else None,
                **{name: settings[name] for name in sorted(sweepable()) if name in settings},
                "run_name": info.get("name"),
                "epochs_run": summary.get("epochs_run", summary.get("epoch")),
                "error": summary.get("error"),
                "sweep": summary.get("sweep"),  # the study of a run_local trial
            }
        )
    return rows
