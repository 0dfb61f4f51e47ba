"""What the sweep tests share: Gaussian blobs as the data (trials take milliseconds), small
sweep definitions and ``run``, a local sweep in a temporary SQLite storage."""

from pathlib import Path

import numpy as np

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


def points(study):
    return [(t.params["hidden_size"], t.params["optimizer"]) for t in study.trials]


def run(config, tmp_path, lines=None, **options):
    options = {"count": None, "base": BASE, "tracker": "none", **options}
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    say = lines.append if lines is not None else (lambda line: None)
    return sweep.run_local(config, storage=storage, say=say, **options)
