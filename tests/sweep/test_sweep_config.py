"""Sweeps: the W&B sweep config is read, normalised and validated up front, every error one
line naming the problem."""

import pytest
from sweep_helpers import CONFIGS, quick

from fnn import sweep
from fnn.sweep import wandb_backend


def test_load_config_reads_yaml_and_normalises(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "method: bayes\nmetric: {name: val_loss}\nearly_terminate: {type: hyperband, min_iter: 1}\n"
        "parameters:\n  learning_rate: {min: 1e-4, max: 1e-2}\n  epochs: {min: 1, max: 3}\n"
        "  activation: {values: [tanh, ReLU]}\n  dropout: {value: 0.1}\n"
    )
    config = sweep.load_config(path)
    assert config["metric"] == {"name": "val_loss", "goal": "minimize"}  # W&B's default goal
    assert config["early_terminate"] == {"type": "hyperband", "min_iter": 1, "eta": 3}
    parameters = config["parameters"]
    assert parameters["learning_rate"] == {"distribution": "uniform", "min": 1e-4, "max": 1e-2}
    assert parameters["epochs"] == {"distribution": "int_uniform", "min": 1, "max": 3}
    assert parameters["activation"] == {"distribution": "categorical", "values": ["tanh", "ReLU"]}
    assert parameters["dropout"] == {"distribution": "constant", "value": 0.1}
    assert wandb_backend.wandb_config(config)["parameters"]["activation"] == {
        "values": ["tanh", "ReLU"]
    }
    assert wandb_backend.wandb_config(config)["parameters"]["dropout"] == {"value": 0.1}


@pytest.mark.parametrize("name", ["quick", "assignment", "assignment_mse"])
def test_shipped_configs_are_valid(name):
    config = sweep.load_config(CONFIGS / f"sweep_{name}.yaml")
    assert config["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert set(config["parameters"]) <= sweep.sweepable()
    assert sweep.load_config(config) == config  # normalised once is normalised


def test_assignment_configs_hold_the_assignment_space():
    ce = sweep.load_config(CONFIGS / "sweep_assignment.yaml")
    mse = sweep.load_config(CONFIGS / "sweep_assignment_mse.yaml")
    assert ce["method"] == "bayes" and ce["early_terminate"]["min_iter"] == 1
    assert ce["parameters"]["optimizer"]["values"] == [
        "sgd",
        "momentum",
        "nag",
        "rmsprop",
        "adam",
        "nadam",
    ]
    assert ce["parameters"]["weight_decay"]["values"] == [0, 0.0005, 0.5]
    assert mse["parameters"].pop("loss") == {
        "distribution": "constant",
        "value": "mean_squared_error",
    }
    assert mse["parameters"] == ce["parameters"]
    assert mse["name"] == "fashion_mnist_assignment_mse"


BAD = [
    ({"parameters": {"learnin_rate": {"value": 0.1}}}, "learnin_rate", "learning_rate"),
    ({"method": "hyperopt"}, "method", "grid, random, bayes"),
    ({"parameters": {"learning_rate": {"values": [0.1, -0.1]}}}, "learning_rate", "-0.1"),
    ({"parameters": {"momentum": {"min": 0.5, "max": 1.5}}}, "momentum", "[0, 1)"),
    (
        {"parameters": {"momentum": {"distribution": "log_uniform", "min": -3, "max": 0.5}}},
        "momentum",
        "exp(0.5) = 1.649",
    ),  # exp(0.5) = 1.65: log_uniform takes exponents
    (
        {"parameters": {"learning_rate": {"distribution": "normal", "mu": 0, "sigma": 1}}},
        "normal",
        "not supported",
    ),
    ({"parameters": {"learning_rate": {"distribution": "gaussian"}}}, "gaussian", "uniform"),
    ({"method": "grid"}, "learning_rate", "grid"),
    ({"optimizer": "adam"}, "'optimizer'", "run_cap"),
    ({"metric": {"name": "accuracy", "goal": "maximize"}}, "metric.name", "val_accuracy"),
    ({"metric": {"name": "val_loss", "goal": "lower"}}, "metric.goal", "minimize"),
    ({"parameters": {"epochs": {"values": [2, 2.5]}}}, "epochs", "integer"),
    ({"parameters": {"optimizer": {"values": ["adam", "lbfgs"]}}}, "lbfgs", "nadam"),
    ({"parameters": {"learning_rate": {"min": 0.1, "max": 0.01}}}, "learning_rate", "below"),
    ({"early_terminate": {"type": "envelope"}}, "early_terminate", "hyperband"),
    ({"parameters": {"data_dir": {"value": "/data"}}}, "data_dir", "sweepable"),
]


@pytest.mark.parametrize(("changes", "names", "accepted"), BAD)
def test_load_config_errors_name_the_problem(changes, names, accepted):
    with pytest.raises(sweep.SweepConfigError) as caught:
        sweep.load_config(quick(**changes))
    message = str(caught.value)
    assert names in message and accepted in message
    assert "\n" not in message


def test_unreadable_yaml_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method: [random\n")
    with pytest.raises(sweep.SweepConfigError, match="bad.yaml: line 2, column 1: expected ','"):
        sweep.load_config(path)
    with pytest.raises(sweep.SweepConfigError, match="missing.yaml: does not exist"):
        sweep.load_config(tmp_path / "missing.yaml")


def test_a_missing_goal_on_an_accuracy_warns():
    with pytest.warns(UserWarning, match="goal: maximize"):
        config = sweep.load_config(quick(metric={"name": "val_accuracy"}))
    assert config["metric"]["goal"] == "minimize"
