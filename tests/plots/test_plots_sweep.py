"""fnn.plots.sweep: the parallel-coordinates plot, the metric by run and the importances."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import assert_png

from fnn.plots import importance_bar, metric_by_run, parallel_coordinates

PARAMS = ["learning_rate", "batch_size", "optimizer", "activation", "num_layers"]


def sweep_trials(count=30, seed=0):
    """A realistic random-search sweep: log-uniform learning rates, a few failed trials."""
    rng = np.random.default_rng(seed)
    trials = []
    for index in range(count):
        trials.append(
            {
                "learning_rate": float(10 ** rng.uniform(-4, -2)),
                "batch_size": int(rng.choice([16, 32, 64])),
                "optimizer": str(rng.choice(["sgd", "adam", "nadam"])),
                "activation": str(rng.choice(["relu", "tanh", "sigmoid"])),
                "num_layers": int(rng.integers(1, 6)),
                "val_accuracy": None if index % 8 == 3 else float(rng.uniform(0.7, 0.9)),
            }
        )
    return trials


def test_parallel_coordinates_writes_a_png(tmp_path):
    open_figures = plt.get_fignums()
    path = tmp_path / "new" / "dir" / "parallel.png"
    assert parallel_coordinates(sweep_trials(), PARAMS, "val_accuracy", path) == path
    assert_png(path, 500, 900)
    assert plt.get_fignums() == open_figures


def test_parallel_coordinates_edge_cases(tmp_path):
    trials = sweep_trials()
    single = parallel_coordinates(trials[:1], PARAMS, "val_accuracy", tmp_path / "one.png")
    assert_png(single, 500, 900)

    for trial in trials:
        trial["momentum"] = 0.9  # a param with a single value
    del trials[0]["optimizer"]  # a missing value
    trials[1]["activation"] = None
    path = parallel_coordinates(
        trials, [*PARAMS, "momentum"], "val_accuracy", tmp_path / "b.png", title="t"
    )
    assert_png(path, 500, 900)

    failed = [dict(trial, val_accuracy=None) for trial in trials]
    assert_png(parallel_coordinates(failed, PARAMS, "val_accuracy", tmp_path / "none.png"))
    assert_png(parallel_coordinates([], PARAMS, "val_accuracy", tmp_path / "empty.png"))


def test_parallel_coordinates_for_a_loss_to_minimize(tmp_path):
    trials = [
        dict(
            trial, val_loss=math.inf if trial["val_accuracy"] is None else 2 - trial["val_accuracy"]
        )
        for trial in sweep_trials(12)
    ]
    path = parallel_coordinates(trials, PARAMS[:3], "val_loss", tmp_path / "loss.png")
    assert_png(path)
    with pytest.raises(ValueError, match="maximize, minimize"):
        parallel_coordinates(trials, PARAMS, "val_loss", tmp_path / "x.png", goal="lower")


def test_metric_by_run_writes_a_png(tmp_path):
    values = [0.8, None, 0.85, float("nan"), 0.82, 0.87, 0.86]
    assert_png(metric_by_run(values, tmp_path / "a" / "by_run.png"), 400, 700)
    losses = [0.6, None, 0.5, 0.55, float("nan"), 0.45]
    path = metric_by_run(
        losses, tmp_path / "loss.png", metric="val_loss", goal="minimize", title="t"
    )
    assert_png(path, 400, 700)
    assert_png(metric_by_run([None, None], tmp_path / "none.png"))
    assert_png(metric_by_run([0.9], tmp_path / "one.png"))
    with pytest.raises(ValueError, match="goal"):
        metric_by_run(values, tmp_path / "x.png", goal="max")


def test_importance_bar_writes_a_png(tmp_path):
    importances = {"learning_rate": 0.41, "optimizer": 0.27, "batch_size": 0.05, "activation": 0.18}
    assert_png(importance_bar(importances, tmp_path / "imp.png"), 250, 600)
    assert_png(importance_bar({"learning_rate": 1.0}, tmp_path / "one.png"))
    assert_png(importance_bar({"a": -0.1, "b": 0.3, "c": float("nan")}, tmp_path / "neg.png"))
    assert_png(importance_bar({}, tmp_path / "empty.png"))
