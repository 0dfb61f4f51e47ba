"""Sweeps: the W&B sweep config is validated up front, maps onto Optuna, runs and resumes
locally in SQLite, records per-trial W&B runs offline, and is reported."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from fnn import data, sweep
from fnn.sweep import optuna_space, optuna_study, training
from fnn.train import TrainingDiverged

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
REAL_PREPARE = data.prepare


def blobs(n=400, classes=3, features=8, seed=0):
    """Gaussian blobs: learnable in an epoch or two, so trials take milliseconds."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, features)) * 2
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.standard_normal((n, features))).astype(np.float32)
    cut = int(0.75 * n)
    return data.Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[:0], y[:0])


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    """Every split is the blobs; counts how often the loader ran."""
    calls = []

    def prepare(name, **options):
        calls.append((name, options))
        return blobs(seed=options.get("seed", 0))

    monkeypatch.setattr(data, "prepare", prepare)
    monkeypatch.setattr(training, "_SPLITS", {})
    return calls


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


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


# --- the configuration -------------------------------------------------------------------------


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
    assert sweep.wandb_config(config)["parameters"]["activation"] == {"values": ["tanh", "ReLU"]}
    assert sweep.wandb_config(config)["parameters"]["dropout"] == {"value": 0.1}


@pytest.mark.parametrize("name", ["quick", "assignment", "assignment_mse"])
def test_shipped_configs_are_valid(name):
    config = sweep.load_config(CONFIGS / f"sweep_{name}.yaml")
    assert config["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert set(config["parameters"]) <= sweep.SWEEPABLE
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
    with pytest.raises(sweep.SweepConfigError, match="bad.yaml: cannot read it"):
        sweep.load_config(path)


def test_a_missing_goal_on_an_accuracy_warns():
    with pytest.warns(UserWarning, match="goal: maximize"):
        config = sweep.load_config(quick(metric={"name": "val_accuracy"}))
    assert config["metric"]["goal"] == "minimize"


# --- the Optuna mapping ------------------------------------------------------------------------


def test_methods_map_to_optuna_samplers():
    samplers = optuna.samplers
    grid_sampler = sweep.optuna_sampler(sweep.load_config(grid()))
    assert isinstance(grid_sampler, samplers.GridSampler)
    assert sweep.grid_space(sweep.load_config(grid())) == {
        "hidden_size": [8, 16],
        "optimizer": ["adam", "sgd"],
    }
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
    value = optuna_space._suggest(trial, name, config["parameters"][name])
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


# --- running locally ---------------------------------------------------------------------------


def test_run_local_runs_and_resumes_in_sqlite(tmp_path, synthetic_data):
    lines = []
    study = run(quick(), tmp_path, lines, count=6)
    assert (tmp_path / "sweeps.db").exists()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    first = [(t.params, t.value) for t in study.trials]
    assert len(synthetic_data) == 1  # the splits are loaded once and shared by the trials
    assert sum(line.startswith("trial ") for line in lines) == 6

    study = run(quick(), tmp_path, lines, count=2)
    assert len(study.trials) == 8
    assert [(t.params, t.value) for t in study.trials[:6]] == first
    learning_rates = [t.params["learning_rate"] for t in study.trials]
    assert len(set(learning_rates)) == 8  # the resumed sampler does not redraw the first values
    assert "study t: 6 trials so far (6 complete, 0 pruned, 0 failed); running 2 new" in lines

    trial = study.trials[0]
    assert trial.user_attrs["run_name"].endswith("_t0")
    history = trial.user_attrs["history"]
    assert history["val_accuracy"][-1] == trial.value
    assert list(trial.intermediate_values) == [1, 2]  # reported every epoch
    assert list(trial.intermediate_values.values()) == history["val_accuracy"]


def test_grid_resumes_without_rerunning_a_point(tmp_path):
    lines = []
    study = run(grid(), tmp_path, lines, count=3)
    assert len(study.trials) == 3
    study = run(grid(), tmp_path, lines)  # None: the rest of the grid
    assert sorted(points(study)) == [(8, "adam"), (8, "sgd"), (16, "adam"), (16, "sgd")]
    study = run(grid(), tmp_path, lines)
    assert len(study.trials) == 4
    assert "grid exhausted: 4 of 4 points done; no new trials" in lines[-2]


def test_grid_reruns_an_interrupted_point_but_not_a_diverged_one(tmp_path, monkeypatch):
    real_fit = training.fit
    calls = []

    def flaky_fit(config, splits, **options):
        calls.append((config.hidden_size, config.optimizer))
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the second trial
        if len(calls) >= 4 and calls[-1] == calls[3]:  # the fourth point diverges, always
            raise TrainingDiverged("training diverged at epoch 1; try a lower learning rate")
        return real_fit(config, splits, **options)

    monkeypatch.setattr(training, "fit", flaky_fit)
    with pytest.raises(KeyboardInterrupt):
        run(grid(), tmp_path)
    study = run(grid(), tmp_path)
    states = [(p, t.state.name) for p, t in zip(points(study), study.trials, strict=True)]
    interrupted = states[1][0]
    assert states[1][1] == "FAIL" and "error" not in study.trials[1].user_attrs
    assert (interrupted, "COMPLETE") in states[2:]  # queued again and completed
    diverged = [t for t in study.trials if "error" in t.user_attrs]
    assert len(diverged) == 1 and diverged[0].state.name == "FAIL"
    assert "diverged" in diverged[0].user_attrs["error"]
    assert len(study.trials) == 5  # four points, one of them twice

    study = run(grid(), tmp_path)
    assert len(study.trials) == 5  # the diverged point is final: not run again


def test_a_diverged_trial_fails_with_its_message_and_the_sweep_goes_on(tmp_path):
    parameters = {
        "epochs": {"value": 2},
        "optimizer": {"value": "sgd"},
        "learning_rate": {"values": [1e6, 0.01]},
    }
    lines = []
    study = run(quick(parameters=parameters), tmp_path, lines, count=4)
    outcomes = {(t.params["learning_rate"], t.state.name) for t in study.trials}
    assert outcomes == {(1e6, "FAIL"), (0.01, "COMPLETE")}
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert failed.user_attrs["error"].startswith("training diverged at epoch 1")
    assert f"trial   {failed.number} fail " in "\n".join(lines)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_killed_trial_is_failed_by_its_stale_heartbeat_and_rerun(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(optuna_study, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(optuna_study, "GRACE_SECONDS", 1)
    study = run(grid(), tmp_path, count=0)
    orphan = study.ask()  # a trial whose process then died: RUNNING, heartbeat going stale
    study._storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.2)
    study = run(grid(), tmp_path)
    assert study.trials[0].state.name == "FAIL"
    done = [(t.params["hidden_size"], t.params["optimizer"]) for t in study.trials[1:]]
    assert sorted(done) == [(8, "adam"), (8, "sgd"), (16, "adam"), (16, "sgd")]
    assert study.trials[1].system_attrs["failed_trial"] == 0  # the orphan's point, run again


def test_hyperband_prunes_per_epoch(tmp_path):
    config = quick(
        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3},
        parameters={
            "epochs": {"value": 4},
            "learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 0.3},
            "optimizer": {"values": ["sgd", "adam"]},
        },
    )
    study = run(config, tmp_path, count=14)
    states = [t.state.name for t in study.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    for trial in study.trials:
        epochs = len(trial.user_attrs["history"]["val_accuracy"])
        assert list(trial.intermediate_values) == list(range(1, epochs + 1))
        if trial.state.name == "PRUNED":
            assert epochs < 4
        else:
            assert epochs == 4


def test_run_cap_holds_across_invocations(tmp_path):
    lines = []
    study = run(quick(run_cap=3), tmp_path, lines)
    assert len(study.trials) == 3
    study = run(quick(run_cap=3), tmp_path, lines, count=5)
    assert len(study.trials) == 3
    assert "run_cap 3 reached; no new trials" in lines[-2]


def test_run_local_refuses_bad_requests(tmp_path):
    with pytest.raises(sweep.SweepConfigError, match="count or set run_cap"):
        run(quick(), tmp_path)
    with pytest.raises(sweep.SweepConfigError, match="needs a name"):
        run({k: v for k, v in quick().items() if k != "name"}, tmp_path, count=1)
    run(quick(), tmp_path, count=1)
    changed = quick()
    changed["parameters"]["hidden_size"] = {"values": [8, 64]}
    with pytest.raises(sweep.SweepConfigError, match="different sweep .parameters changed"):
        run(changed, tmp_path, count=1)


def test_the_study_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_sweep.yaml"
    config = quick()
    del config["name"]
    path.write_text(json.dumps(config))  # JSON is YAML
    assert run(path, tmp_path, count=1).study_name == "my_sweep"


def test_the_quick_config_on_real_data(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(data, "prepare", REAL_PREPARE)
    base = {"data_dir": str(data_dir), "train_subset": 10_000}
    study = run(CONFIGS / "sweep_quick.yaml", tmp_path, count=2, base=base)
    assert study.study_name == "quick"
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.value > 0.6 for t in study.trials)  # 2 epochs on 9,000 Fashion-MNIST images
    (splits,) = training._SPLITS.values()
    assert len(splits.y_train) + len(splits.y_val) == 10_000  # the base's train_subset


def test_splits_are_cached_by_what_changes_them(synthetic_data):
    from fnn.train import TrainConfig

    sweep.load_splits(TrainConfig(learning_rate=0.1))
    sweep.load_splits(TrainConfig(hidden_size=3))
    assert len(synthetic_data) == 1
    sweep.load_splits(TrainConfig(seed=1))
    assert len(synthetic_data) == 2


# --- W&B ---------------------------------------------------------------------------------------


CAPTURE = {"capture_output": True, "text": True, "check": True}


def inspect(run_dir):
    """The leet summary and the run record of an offline run, read by W&B's own CLI."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)]
    summary = subprocess.run([*command[:-1], "--summary", str(run_dir)], **CAPTURE).stdout
    records = subprocess.run(command, **CAPTURE).stdout
    run_record = next(
        json.loads(line)["run"] for line in records.splitlines() if '"type":"run"' in line
    )
    return json.loads(summary), run_record


def test_each_trial_leaves_an_offline_wandb_run_and_the_folder_reports(tmp_path, wandb_offline):
    study = run(quick(), tmp_path, count=2, tracker="wandb", project="fnn-test")
    runs = sorted((wandb_offline / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    summary, record = inspect(runs[0])
    trial = next(t for t in study.trials if t.user_attrs["run_name"] == summary["name"])
    assert record["run_group"] == "t" and record["job_type"] == "sweep"
    assert summary["config"]["hidden_size"] == trial.params["hidden_size"]
    assert summary["config"]["learning_rate"] == pytest.approx(trial.params["learning_rate"])
    assert summary["summary"]["val_accuracy"] == pytest.approx(trial.value)
    assert summary["summary"]["sweep_state"] == "COMPLETE"
    assert summary["summary"]["sweep"] == "t" and summary["summary"]["trial"] == trial.number

    paths = sweep.report(wandb_offline / "wandb", out=tmp_path / "report")
    assert all(path.exists() for path in paths.values())
    text = paths["summary"].read_text()
    assert "# Sweep t\n" in text and "W&B runs" in text and "2 complete" in text
    for trial in study.trials:
        assert trial.user_attrs["run_name"] in text


def test_agent_function_trains_the_runs_config(tmp_path, wandb_offline, monkeypatch):
    import wandb

    real_init = wandb.init
    swept = {"hidden_size": 8, "num_layers": 1, "learning_rate": 0.01, "epochs": 2}

    def offline_init(*args, **kwargs):
        return real_init(mode="offline", dir=str(tmp_path), project="agent", config=swept)

    monkeypatch.setattr(wandb, "init", offline_init)
    sweep.agent_function(BASE, "val_loss")()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    summary, _ = inspect(run_dir)
    assert summary["name"] == "hl_1_sz_8_bs_32_ac_relu_opt_adam_lr_0.01_sch_cosine_do_0.2_ep_2"
    assert summary["config"]["batch_size"] == 32  # base, recorded with the sweep's values
    assert summary["config"]["hidden_size"] == 8
    assert summary["summary"]["sweep_state"] == "COMPLETE"
    assert summary["summary"]["epochs_run"] == 2
    assert 0 < summary["summary"]["val_loss"] < 2
    assert summary["state"] == "finished"


def test_run_wandb_without_a_server_points_at_the_local_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(sweep.SweepConfigError, match="--backend local"):
        sweep.run_wandb(quick(), count=1, base=BASE, project="fnn-test")
    with pytest.raises(sweep.SweepConfigError, match="or the id of one to join"):
        sweep.run_wandb(None, count=1, base=BASE)


# --- reports -----------------------------------------------------------------------------------


def test_report_of_a_local_study(tmp_path):
    study = run(quick(), tmp_path, count=6)
    paths = sweep.report("t", out=tmp_path / "report", storage=f"sqlite:///{tmp_path}/sweeps.db")
    names = {"parallel_coordinates", "metric_by_run", "importance", "importance_table"}
    assert names | {"summary", "index"} == set(paths)
    assert all(path.exists() and path.stat().st_size > 0 for path in paths.values())
    text = paths["summary"].read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    values = [float(line.split(" | ")[2]) for line in table[:6]]
    assert values == sorted(values, reverse=True)
    best = max(study.trials, key=lambda t: t.value)
    assert f"| 1 | {best.number} | {best.value:.4f} |" in text
    assert "6 complete" in text and "Method:" in text
    assert "![Parallel coordinates](parallel_coordinates.png)" in text
    page = paths["index"].read_text()
    assert '<img src="metric_by_run.png"' in page and f"{best.value:.4f}" in page
    assert paths["importance_table"].read_text().startswith("parameter,importance\n")


def test_report_of_an_unknown_source_lists_the_studies(tmp_path):
    run(quick(), tmp_path, count=1)
    with pytest.raises(sweep.SweepConfigError, match=r"studies: t\)"):
        sweep.report("nope", out=tmp_path / "r", storage=f"sqlite:///{tmp_path}/sweeps.db")
    with pytest.raises(sweep.SweepConfigError, match="no storage"):
        sweep.report("nope", out=tmp_path / "r", storage=f"sqlite:///{tmp_path}/missing.db")


def test_correlation_importance():
    rows = [(0.1, 8, "tanh"), (0.2, 16, "tanh"), (0.4, 32, "relu"), (0.3, 24, "relu")]
    trials = [{"state": "COMPLETE", "value": v, "width": w, "act": a} for v, w, a in rows]
    trials.append({"state": "FAIL", "value": None, "width": 64, "act": "tanh"})
    importances = sweep.correlation_importance(trials, ["width", "act"])
    assert importances["width"] == pytest.approx(1.0)  # ranks match the metric's exactly
    # correlation ratio: between-group over total sum of squares, around the mean 0.25
    between, total = 2 * 0.1**2 + 2 * 0.1**2, 0.15**2 + 0.05**2 + 0.15**2 + 0.05**2
    assert importances["act"] == pytest.approx(math.sqrt(between / total))
