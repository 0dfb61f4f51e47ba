"""Sweeps: each local trial records an offline W&B run that the report reads back; the W&B
agent trains its run's config; without a server, run_wandb points at the local backend."""

import json
import subprocess
import sys

import pytest
from sweep_helpers import BASE, quick, run, use_blobs

from fnn import sweep


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    """Every split is the blobs; counts how often the loader ran."""
    return use_blobs(monkeypatch)


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


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
