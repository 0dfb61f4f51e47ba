"""Sweeps: run_local runs and resumes a study in SQLite (grid points kept, interrupted and
killed trials run again, diverged ones final, hyperband pruning, run_cap), sharing the splits
across trials."""

import json

import pytest
from sweep_helpers import (
    CONFIGS,
    REAL_PREPARE,
    grid,
    last_point,
    orphan,
    points,
    quick,
    run,
    use_blobs,
)

from fnn import data, sweep
from fnn.sweep import training
from fnn.sweep import workers as coordination
from fnn.train import TrainingDiverged


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    """Every split is the blobs; counts how often the loader ran."""
    return use_blobs(monkeypatch)


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


def test_a_killed_trial_is_failed_by_its_stale_heartbeat_and_rerun(tmp_path, monkeypatch):
    monkeypatch.setattr(coordination, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(coordination, "GRACE_SECONDS", 1)
    run(grid(), tmp_path, count=3)
    # a worker took the last point, beat once and died: the run waits for that trial's
    # heartbeat to go stale, fails it and runs its point again
    number = orphan(tmp_path, "t", heartbeat=True, point=last_point(grid()))
    lines = []
    study = run(grid(), tmp_path, lines)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["FAIL", "COMPLETE"]
    assert sorted(points(study, "COMPLETE")) == [(8, "adam"), (8, "sgd"), (16, "adam"), (16, "sgd")]
    retried = study.trials[4]
    assert retried.user_attrs["retry_of"] == number and "worker" in retried.user_attrs
    assert retried.user_attrs["grid_point"] == last_point(grid())
    assert sum(line.startswith(f"waiting for trial {number},") for line in lines) == 1


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
