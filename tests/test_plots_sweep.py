import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import assert_png

from fnn.plots import (
    MISSING_LABEL,
    MISSING_POSITION,
    curves,
    importance_bar,
    metric_by_run,
    parallel_axis,
    parallel_coordinates,
    wants_log_scale,
)

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


# --- the axis mapping --------------------------------------------------------------------


def test_categorical_values_map_to_distinct_evenly_spaced_positions():
    axis = parallel_axis(["tanh", "relu", "sigmoid", "relu", "tanh"])
    assert axis.kind == "categorical"
    assert axis.labels == ["relu", "sigmoid", "tanh"]  # sorted as strings
    np.testing.assert_allclose(axis.ticks, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(axis.positions, [1.0, 0.0, 0.5, 0.0, 1.0])


def test_mixed_values_are_categorical_sorted_as_strings():
    axis = parallel_axis([10, "adam", 2, True])
    assert axis.kind == "categorical"
    assert axis.labels == ["10", "2", "True", "adam"]
    np.testing.assert_allclose(axis.positions, [0.0, 1.0, 1 / 3, 2 / 3])


def test_log_scale_is_chosen_for_learning_rates_and_not_for_batch_sizes():
    assert wants_log_scale(np.array([1e-4, 1e-3, 1e-2]))
    assert wants_log_scale(np.array([1e-4, 1e-2]))
    assert not wants_log_scale(np.array([16.0, 32.0, 64.0]))
    assert not wants_log_scale(np.array([0.0, 1e-4, 1e-2]))  # zero: no log axis
    assert not wants_log_scale(np.array([-1e-2, 1e-4, 1e-2]))
    # spans a factor of 500 but is spread evenly, as dropout from uniform(0, 0.5) would be
    assert not wants_log_scale(np.linspace(0.001, 0.5, 20))

    learning_rates = parallel_axis([1e-4, 1e-3, 1e-2])
    assert learning_rates.kind == "log"
    np.testing.assert_allclose(learning_rates.positions, [0.0, 0.5, 1.0])
    batch_sizes = parallel_axis([16, 32, 64, 32])
    assert batch_sizes.kind == "linear"
    np.testing.assert_allclose(batch_sizes.positions, [0.0, 1 / 3, 1.0, 1 / 3])
    assert batch_sizes.labels == ["16", "32", "64"]  # few distinct values: each is a tick


def test_log_uniform_samples_get_a_log_axis_although_they_span_less_than_100():
    rates = 10 ** np.random.default_rng(3).uniform(-4, -2, 30)
    assert rates.max() / rates.min() < 100
    axis = parallel_axis(list(rates))
    assert axis.kind == "log"
    np.testing.assert_allclose(
        axis.positions,
        (np.log10(rates) - np.log10(rates.min())) / np.log10(rates.max() / rates.min()),
    )
    ticks = [float(label) for label in axis.labels]
    assert all(rates.min() <= tick <= rates.max() for tick in ticks)
    assert {1e-3} <= set(ticks)


def test_numeric_ticks_lie_on_the_axis_and_do_not_crowd():
    values = list(np.random.default_rng(1).uniform(0.11, 0.93, 40))
    axis = parallel_axis(values)
    assert axis.kind == "linear"
    assert len(axis.ticks) >= 3
    assert np.all((axis.ticks >= 0) & (axis.ticks <= 1))
    assert np.all(np.diff(np.sort(axis.ticks)) >= 0.05)
    for tick, label in zip(axis.ticks, axis.labels, strict=True):
        expected = (float(label) - min(values)) / (max(values) - min(values))
        assert tick == pytest.approx(expected, abs=1e-3)


def test_missing_values_sit_at_a_dash_tick_below_the_axis():
    axis = parallel_axis([0.5, None, 0.7, float("nan"), math.inf])
    assert axis.kind == "linear"
    np.testing.assert_allclose(
        axis.positions, [0.0, MISSING_POSITION, 1.0, MISSING_POSITION, MISSING_POSITION]
    )
    assert axis.labels[-1] == MISSING_LABEL and axis.ticks[-1] == MISSING_POSITION
    assert MISSING_LABEL not in parallel_axis([0.5, 0.7]).labels

    categories = parallel_axis(["adam", None])
    np.testing.assert_allclose(categories.positions, [0.5, MISSING_POSITION])
    assert categories.labels == ["adam", MISSING_LABEL]


def test_single_and_absent_values():
    for values in ([0.001], [3, 3, 3], ["adam", "adam"]):
        axis = parallel_axis(values)
        np.testing.assert_allclose(axis.positions, 0.5)
        assert len(axis.labels) == 1
    nothing = parallel_axis([None, None])
    np.testing.assert_allclose(nothing.positions, MISSING_POSITION)
    assert nothing.labels == [MISSING_LABEL]


def test_long_category_names_are_shortened():
    axis = parallel_axis(["xavier_uniform_with_gain", "he"])
    assert axis.labels[0] == "he" and axis.labels[1].endswith("…") and len(axis.labels[1]) <= 14


# --- the figures ---------------------------------------------------------------------------


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


def test_curves_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    histories = {
        name: [
            {
                "epoch": epoch,
                "val_accuracy": base + 0.02 * epoch,
                "val_loss": 1 - base + rng.random() / epoch,
            }
            for epoch in range(1, 6)
        ]
        for name, base in [("sgd", 0.7), ("adam", 0.8), ("nadam", 0.82)]
    }
    del histories["adam"][2]["val_loss"]  # a record missing a metric is skipped
    path = curves(histories, tmp_path / "c" / "curves.png", title="optimizers")
    assert_png(path, 400, 900)
    one_panel = curves(histories, tmp_path / "acc.png", metrics=["val_accuracy", "train_loss"])
    assert_png(one_panel)
    with pytest.raises(ValueError, match="metric"):
        curves(histories, tmp_path / "x.png", metrics=[])
