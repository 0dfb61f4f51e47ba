"""What the sweep tests share: Gaussian blobs as the data (trials take milliseconds), small
sweep definitions and ``run``, a local sweep in a temporary SQLite storage; ``wait_for`` an
event, and ``orphan``: a trial taken by a worker that died, with or without a heartbeat."""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from fnn import data, sweep
from fnn.sweep import training

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REAL_PREPARE = data.prepare


def blobs(n=400, classes=3, features=8, seed=0):
    """Gaussian blobs: learnable in an epoch or two, so trials take milliseconds."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, features)) * 2
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.standard_normal((n, features))).astype(np.float32)
    cut = int(0.75 * n)
    return data.Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[:0], y[:0])


def use_blobs(monkeypatch) -> list:
    """Make every split the blobs, with an empty splits cache; returns the list of the
    loader's calls, so a test can count them (the ``synthetic_data`` fixture of each module)."""
    calls = []

    def prepare(name, **options):
        calls.append((name, options))
        return blobs(seed=options.get("seed", 0))

    monkeypatch.setattr(data, "prepare", prepare)
    monkeypatch.setattr(training, "_SPLITS", {})
    return calls


BASE = {"batch_size": 32, "log_every": 1000}


def quick(**changes):
    config = {
        "name": "t",
        "method": "random",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {
            "epochs": {"value": 2},
            "hidden_size": {"values": [8, 16]},
            "num_layers": {"values": [1, 2]},
            "learning_rate": {"distribution": "log_uniform_values", "min": 1e-3, "max": 1e-2},
        },
    }
    config.update(changes)
    return config


def grid(**changes):
    parameters = {
        "epochs": {"value": 1},
        "hidden_size": {"values": [8, 16]},
        "optimizer": {"values": ["adam", "sgd"]},
    }
    return quick(**{"method": "grid", "parameters": parameters, **changes})


def points(study, *states: str) -> list[tuple]:
    """(hidden_size, optimizer) of each trial (in ``states`` only, when given)."""
    trials = [t for t in study.trials if not states or t.state.name in states]
    return [(t.params["hidden_size"], t.params["optimizer"]) for t in trials]


def run(config, tmp_path, lines=None, **options):
    options = {"count": None, "base": BASE, "tracker": "none", **options}
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    say = lines.append if lines is not None else (lambda line: None)
    return sweep.run_local(config, storage=storage, say=say, **options)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Poll until ``condition()`` is true. The timeout is a safety net that a working machine,
    however slow, does not reach; the poll interval assumes nothing about its speed."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {timeout:.0f} s waiting for {what}"
        time.sleep(0.02)


def orphan(tmp_path, name: str, *, heartbeat: bool, point: dict) -> int:
    """The number of a trial of study ``name`` (in ``run``'s storage) taken as a worker takes
    one, by a process that then died: its grid ``point`` queued, then taken (the queue must be
    empty before), RUNNING. With ``heartbeat``, it beat once and named itself, as a worker
    does first; without, it died before either. Only Optuna's public API."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'sweeps.db'}")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        study.enqueue_trial(point, user_attrs={"grid_point": point})
        trial = study.ask()
        assert trial.params == {} and trial.user_attrs["grid_point"] == point
        if heartbeat:
            study_id = storage.get_study_id_from_name(name)
            storage.record_heartbeat(
                storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            )
            trial.set_user_attr("worker", "gone:0")
        return trial.number
    finally:
        storage.engine.dispose()


def last_point(config: dict) -> dict:
    """The last point of the grid ``config``: the one left after ``count=3`` of 4."""
    return sweep.grid_points(sweep.load_config(config))[-1]
