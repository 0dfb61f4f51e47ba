"""fnn.plots.scales: the axes of a parallel-coordinates plot (linear, log or categorical,
ticks, missing values)."""

import math

import numpy as np
import pytest

from fnn.plots import MISSING_LABEL, MISSING_POSITION, parallel_axis, wants_log_scale


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
