import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from fnn import tracking
from fnn.cli import main

QUICK = ["--train_subset", "600", "--epochs", "2", "-nhl", "1", "-sz", "16", "--log_every", "5"]


WANDB = str(Path(sys.executable).parent / "wandb")  # the CLI installed beside this Python


def read_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """The summary and the history of an offline W&B run, read back by W&B's own reader."""
    summary = json.loads(
        subprocess.run(
            [WANDB, "leet", "inspect", "--summary", "--json", str(run_dir)],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    records = subprocess.run(
        [WANDB, "leet", "inspect", "--json", str(run_dir)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    history = [
        json.loads(line)["history"]["item"] for line in records if '"type":"history"' in line
    ]
    return summary, history


def offline_runs(folder: Path) -> list[Path]:
    return sorted((folder / "wandb").glob("offline-run-*"))


def test_run_name_tells_the_configuration():
    config = {
        "hidden_sizes": [128, 128, 128], "batch_size": 64, "activation": "tanh",
        "optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0,
        "loss": "cross_entropy", "weight_init": "xavier", "dropout": 0.0,
    }  # fmt: skip
    assert tracking.run_name(config) == "hl_3_sz_128_bs_64_ac_tanh_opt_adam_lr_1e-3"
    config.update(hidden_sizes=[512, 256], weight_decay=5e-4, loss="mean_squared_error")
    assert tracking.run_name(config) == (
        "hs_512-256_bs_64_ac_tanh_opt_adam_lr_1e-3_wd_5e-4_loss_mse"
    )


def test_disabled_and_none_record_nothing(tmp_path, monkeypatch):
    assert isinstance(tracking.start("none", {}), tracking.NoTracker)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert isinstance(tracking.start("wandb", {}), tracking.NoTracker)
    assert not (tmp_path / "wandb").exists()
    with pytest.raises(ValueError, match="wandb, none"):
        tracking.start("mlflow", {})


def test_fnn_train_without_account_leaves_an_offline_run(data_dir, offline_wandb, capsys):
    code = main(["train", "--data_dir", str(data_dir), *QUICK])
    assert code == 0
    err = capsys.readouterr().err
    assert "no W&B API key" in err and "wandb sync" in err
    (run,) = offline_runs(offline_wandb)
    summary, history = read_run(run)
    assert summary["name"] == "hl_1_sz_16_bs_64_ac_relu_opt_adam_lr_1e-3_sch_cosine_do_0.2_ep_2"
    assert summary["config"]["optimizer"] == "adam"
    epochs = [h for h in history if "val_accuracy" in h]
    assert [h["epoch"] for h in epochs] == [1, 2]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert all(np.isfinite(h[key]) for h in epochs), key
    steps = [h for h in history if "step" in h and "epoch" not in h]
    assert [h["step"] for h in steps][:3] == [5, 10, 15]
    assert 0 < summary["summary"]["test_accuracy"] <= 1
    assert "confusion_table" in summary["summary"] and "confusion_matrix" in summary["summary"]


def test_train_py_without_account_leaves_an_offline_run(data_dir, offline_wandb):
    env = {**os.environ, "WANDB_DIR": str(offline_wandb)}
    result = subprocess.run(
        [
            sys.executable, str(REPO / "train.py"),
            "--wandb_entity", "myname", "--wandb_project", "myprojectr",
            "--data_dir", str(data_dir), *QUICK,
        ],
        capture_output=True, text=True, env=env, cwd=offline_wandb, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = offline_runs(offline_wandb)
    summary, history = read_run(run)
    assert summary["project"] == "myprojectr"
    assert [h["epoch"] for h in history if "val_accuracy" in h] == [1, 2]


class Exploding:
    def log(self, *args, **kwargs):
        raise RuntimeError("server said no")

    finish = summary = log


def test_a_failing_tracker_never_stops_training():
    warnings = []
    tracker = tracking.WandbTracker(Exploding(), warnings.append)
    tracker.log({"a": 1})
    tracker.log({"a": 2})
    tracker.summary({"b": 1})
    tracker.finish()
    assert len(warnings) == 1 and "training goes on" in warnings[0]


def test_samples_log_an_image(data_dir, offline_wandb, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["samples", "--data_dir", str(data_dir), "--out", str(out), "--log"]) == 0
    (run,) = offline_runs(offline_wandb)
    summary, _ = read_run(run)
    assert summary["summary"]["samples"]["_type"] == "image-file"


def test_run_name_rounds_sampled_learning_rates():
    config = {"hidden_sizes": [32], "batch_size": 64, "activation": "relu",
              "optimizer": "adam", "learning_rate": 0.0095195921}  # fmt: skip
    assert tracking.run_name(config).endswith("_lr_9.52e-3")


def test_a_run_id_still_held_elsewhere_continues_as_a_new_run(offline_wandb, monkeypatch):
    # After a SIGKILL, the killed process's W&B service can still hold the run's id for a
    # while; --resume then logs into a new run instead of stopping.
    import wandb

    init, lines = wandb.init, []

    def init_refusing_the_old_id(*args, **kwargs):
        if kwargs.get("id") == "held":
            raise RuntimeError("run ID held is in use")
        return init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", init_refusing_the_old_id)
    tracker = tracking.start("wandb", {"a": 1}, run_id="held", directory=offline_wandb,
                             say=lines.append)  # fmt: skip
    assert isinstance(tracker, tracking.WandbTracker) and tracker.run_id != "held"
    tracker.finish()
    assert lines[0] == (
        "W&B could not continue run held (RuntimeError: run ID held is in use); this part is a "
        "new run"
    )
