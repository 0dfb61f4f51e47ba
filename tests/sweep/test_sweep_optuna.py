"""Sweeps: the W&B sweep config maps onto Optuna (method -> sampler, each distribution -> a
suggest call, hyperband -> HyperbandPruner)."""

import math

import optuna
import pytest
from sweep_helpers import grid, quick, run, use_blobs

from fnn import sweep
from fnn.sweep import optuna_space


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    """Every split is the blobs; counts how often the loader ran."""
    return use_blobs(monkeypatch)


def test_methods_map_to_optuna_samplers():
    samplers = optuna.samplers
    grid_sampler = sweep.optuna_sampler(sweep.load_config(grid()))
    assert isinstance(grid_sampler, samplers.RandomSampler)  # every grid trial takes a point
    assert sweep.grid_space(sweep.load_config(grid())) == {
        "hidden_size": [8, 16],
        "optimizer": ["adam", "sgd"],
    }
    assert sweep.grid_points(sweep.load_config(grid())) == [
        {"hidden_size": h, "optimizer": o} for h in (8, 16) for o in ("adam", "sgd")
    ]
    assert isinstance(sweep.optuna_sampler(sweep.load_config(quick())), samplers.RandomSampler)
    bayes = sweep.load_config(quick(method="bayes"))
    assert isinstance(sweep.optuna_sampler(bayes, seed=3), samplers.TPESampler)


Categorical = optuna.distributions.CategoricalDistribution


Int, Float = optuna.distributions.IntDistribution, optuna.distributions.FloatDistribution


Q_INT = {"distribution": "q_uniform", "min": 16, "max": 64, "q": 16}


Q_FLOAT = {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1}


LOG_VALUES = {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}


LOG_EXPONENTS = {"distribution": "log_uniform", "min": -9.2, "max": -4.6}


SUGGESTIONS = [  # W&B spec -> the Optuna distribution it must become
    ({"values": ["tanh", "relu"]}, "activation", Categorical(["tanh", "relu"])),
    ({"min": 1, "max": 4}, "num_layers", Int(1, 4)),
    ({"min": 0.0, "max": 0.5}, "dropout", Float(0.0, 0.5)),
    (Q_INT, "hidden_size", Int(16, 64, step=16)),
    (Q_FLOAT, "dropout", Float(0.0, 0.5, step=0.1)),
    (LOG_VALUES, "learning_rate", Float(1e-4, 1e-2, log=True)),
    (LOG_EXPONENTS, "learning_rate", Float(math.exp(-9.2), math.exp(-4.6), log=True)),
]


@pytest.mark.parametrize(("spec", "name", "expected"), SUGGESTIONS)
def test_each_distribution_becomes_an_optuna_suggestion(spec, name, expected):
    config = sweep.load_config(quick(parameters={name: spec}))
    trial = optuna.create_study().ask()
    value = optuna_space.suggest(trial, name, config["parameters"][name])
    assert trial.distributions[name] == expected
    assert expected._contains(expected.to_internal_repr(value))


def test_list_values_are_swept_as_categories(tmp_path):
    config = grid(parameters={"hidden_sizes": {"values": [[8], [8, 4]]}, "epochs": {"value": 1}})
    study = run(config, tmp_path)
    assert sorted(t.params["hidden_sizes"] for t in study.trials) == ["[8, 4]", "[8]"]
    names = sorted(t.user_attrs["run_name"] for t in study.trials)
    assert names[0].startswith("hl_1_sz_8_") and names[1].startswith("hs_8-4_")


def test_hyperband_maps_to_optuna_hyperband():
    pruner = sweep.optuna_pruner(
        sweep.load_config(quick(early_terminate={"type": "hyperband", "min_iter": 2, "eta": 2})),
        {},
    )
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource, pruner._reduction_factor) == (2, 2, 2)
    varying = quick(early_terminate={"type": "hyperband", "max_iter": 27, "s": 2})
    varying["parameters"]["epochs"] = {"values": [9, 27]}
    pruner = sweep.optuna_pruner(sweep.load_config(varying), {})
    assert (pruner._min_resource, pruner._max_resource) == (3, 27)  # 27 // 3**2
    nothing = sweep.optuna_pruner(sweep.load_config(quick()), {})
    assert isinstance(nothing, optuna.pruners.NopPruner)
    too_late = quick(early_terminate={"type": "hyperband", "min_iter": 5})
    with pytest.raises(sweep.SweepConfigError, match="min_iter 5"):
        sweep.optuna_pruner(sweep.load_config(too_late), {})
