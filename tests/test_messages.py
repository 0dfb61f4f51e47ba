"""Every message right: what the fault probe and a newcomer found, each one line with a
non-zero exit and nothing left on disk; the papercuts (``-q``, the live train loss, the
fallback folder's size); and no command leaves files behind in HOME or the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pooch  # noqa: F401 - imported now: its logger binds the stderr of the moment it is imported
import pytest
from data.data_support import closed_url

import fnn
from fnn import data
from fnn.cli import main
from fnn.cli import runs as run_folders
from fnn.data import download
from fnn.train import loop

QUICK = ["--train_subset", "1000", "--epochs", "1", "-nhl", "1", "-sz", "16"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def files_in(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize(
    "out, says",
    [
        ("x.xyz", "cannot draw a .xyz file; give a name ending in"),
        ("/proc/nope.png", "cannot write there"),
    ],
)
def test_a_figure_that_cannot_be_written_is_refused_at_once(out, says, tmp_path, monkeypatch,
                                                           capsys):  # fmt: skip
    if out.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    monkeypatch.chdir(tmp_path)
    assert main(["samples", "--out", out]) == 2
    assert says in one_line(capsys)
    assert files_in(tmp_path) == []


def test_the_figure_formats_are_matplotlibs():
    from matplotlib.backend_bases import FigureCanvasBase

    from fnn.cli.training import FIGURE_FORMATS

    assert set(FIGURE_FORMATS) == set(FigureCanvasBase.get_supported_filetypes())


def test_a_sweep_report_into_a_file_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("report").write_text("mine")
    assert main(["sweep-report", "t", "--out", "report"]) == 2
    assert "--out report: is a file" in one_line(capsys)
    assert Path("report").read_text() == "mine"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_config_that_is_not_a_regular_file_is_refused_at_once(kind, tmp_path, capsys):
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "config.yaml"
        os.mkfifo(path)  # reading it would wait forever for a writer
    assert main(["train", "--config", str(path)]) == 2
    assert f"--config {path}: is not a regular file" in one_line(capsys)


def test_a_key_given_twice_is_refused_in_a_config_and_in_a_sweep(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("epochs: 1\nbatch_size: 8\nepochs: 2\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "line 3, column 1: key 'epochs' given twice (first on line 1)" in one_line(capsys)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: s\nmethod: grid\nparameters:\n  epochs: {value: 1}\n"
                     "  epochs: {value: 2}\nmetric: {name: val_loss}\n")  # fmt: skip
    assert main(["sweep", str(sweep), "--backend", "local"]) == 2
    assert "line 5, column 3: key 'epochs' given twice (first on line 4)" in one_line(capsys)


def test_a_warning_is_one_line_naming_the_program(tmp_path):
    """As a process (``python -m fnn``, the ``fnn`` script, ``train.py``): fnn's own warning
    is its message; another's says its category and place. ``main`` leaves warnings alone."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: s\nmethod: grid\nmetric: {name: val_accuracy}\nparameters:\n"
        "  epochs: {values: [1, 0]}\n"
    )  # no goal (a warning), then an error
    done = subprocess.run([sys.executable, "-m", "fnn", "sweep", str(sweep), "--backend", "local"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "fnn: warning: metric.goal is not given, so val_accuracy is minimized (W&B's default); "
        "add `goal: maximize`",
        "fnn: parameter epochs: value 0 is invalid; epochs must be >= 1",
    ]  # fmt: skip
    script = tmp_path / "script.py"
    script.write_text("import warnings\nfrom fnn.cli import entry\nentry(['--version'])\n"
                      "warnings.warn('a library\\nsays so', FutureWarning)\n")  # fmt: skip
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"fnn: warning: a library says so (FutureWarning at {script}:4)\n"


def test_yaml_merge_keys_work_and_a_key_twice_on_one_line_is_refused(tmp_path):
    from fnn.train import read_yaml

    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {epochs: 1}\nrun:\n  <<: *base\n  batch_size: 8\n")
    assert read_yaml(merged)["run"] == {"epochs": 1, "batch_size": 8}
    flow = tmp_path / "flow.yaml"
    flow.write_text("metric: {name: val_loss, goal: maximize, goal: minimize}\n")
    with pytest.raises(ValueError, match="key 'goal' given twice"):
        read_yaml(flow)


def test_bench_refuses_a_bad_plot_before_timing(tmp_path, capsys):
    assert main(["bench", "--plot", str(tmp_path / "b.xyz"), "--batch_sizes", "8"]) == 2
    assert "--plot" in one_line(capsys) and files_in(tmp_path) == []


def test_a_train_subset_larger_than_the_data_is_refused(data_dir, capsys):
    argv = ["train", "--data_dir", str(data_dir), "--train_subset", "99999999", "--tracker",
            "none"]  # fmt: skip
    assert main(argv) == 1
    assert one_line(capsys).endswith(
        "train_subset 99,999,999 is more than the 60,000 training images of fashion_mnist: "
        "give at most 60,000, or leave it out"
    )


def test_an_optimizer_hyperparameter_given_as_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="sgd: learning_rate must be a number, got the string"):
        fnn.optimizers.sgd("0.1")
    with pytest.raises(TypeError, match="adam: beta1 must be a number"):
        fnn.optimizers.adam(1e-3, beta1="0.9")
    with pytest.raises(TypeError, match="max_norm must be a number"):
        fnn.optimizers.clip_by_global_norm("1")
    with pytest.raises(TypeError, match="init_value must be a number"):
        fnn.optimizers.cosine_decay_schedule("0.1", 10)


def test_quiet_prints_only_the_result(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(fnn.tracking, "_announced", [])  # as in a new process
    assert main(["train", "--data_dir", str(data_dir), *QUICK, "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no W&B line either
    assert captured.out.startswith("val accuracy ") and len(captured.out.splitlines()) == 1


def test_the_progress_bar_shows_the_train_loss_of_every_update():
    run = loop._Run(params={}, opt_state=None, batch_rng=None, dropout_rng=None)
    assert np.isnan(loop._live_loss(run))
    run.loss_sum, run.loss_count = 3.0, 2  # two updates since the last record
    assert loop._live_loss(run) == 1.5
    run.loss_sum, run.loss_count = 0.0, 0  # right after a record
    run.history["steps"].append({"step": 200, "running_train_loss": 0.75})
    assert loop._live_loss(run) == 0.75


def test_the_fallback_folder_keeps_the_newest_runs(tmp_path):
    for age in range(13):
        folder = tmp_path / f"run-{age:02d}"
        (folder / ".fnn").mkdir(parents=True)  # a saved run
        os.utime(folder, (1_000_000 - age, 1_000_000 - age))  # run-00 is the newest
    (tmp_path / "mine").mkdir()  # not a run fnn saved: left alone
    os.utime(tmp_path / "mine", (0, 0))
    run_folders._prune(tmp_path, keep=run_folders.UNSAVED_KEPT)
    kept = sorted(path.name for path in tmp_path.iterdir())
    assert kept == ["mine"] + [f"run-{age:02d}" for age in range(10)]


def test_no_command_leaves_files_behind(data_dir, tmp_path, monkeypatch, capsys):
    """A representative set of commands, failing and succeeding, in a fresh HOME and cache:
    what is left is only what a command was asked to write."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    monkeypatch.chdir(work)
    url = closed_url()  # downloads fail at once: nothing listens there
    monkeypatch.setattr(download, "MIRRORS", {key: [url] for key in data.DATASETS})
    monkeypatch.setattr(download, "CIFAR_URL", url + data.CIFAR_ARCHIVE)
    monkeypatch.setattr(download, "SYSTEM_DIR", tmp_path / "system")
    Path("notadb.sqlite").write_text("not a database")
    sweep = Path("s.yaml")
    sweep.write_text(json.dumps({"name": "s", "method": "grid", "metric": {"name": "val_loss"},
                                 "parameters": {"epochs": {"value": 1},
                                                "hidden_size": {"values": [4, 8]}}}))  # fmt: skip
    commands = [
        (["train", "--epochs", "1"], 1),  # no data: the download fails
        (["train", "-d", "cifar10", "--epochs", "1"], 1),
        (["samples", "--out", "x.xyz"], 2),
        (["train", "--config", "missing.yaml"], 2),
        (["sweep", str(sweep), "--backend", "local", "--storage", "sqlite:///notadb.sqlite"], 1),
        (["sweep", str(sweep), "--backend", "local", "--data_dir", str(data_dir),
          "--train_subset", "600", "--storage", "sqlite:///sweeps.db", "--tracker", "none"], 0),
        (["sweep-report", "s", "--out", "report"], 0),
        (["train", "--data_dir", str(data_dir), *QUICK, "--tracker", "none"], 0),
    ]  # fmt: skip
    for argv, code in commands:
        assert main(argv) == code, (argv, capsys.readouterr())
    capsys.readouterr()
    assert files_in(home) == []
    left = [name for name in files_in(work) if not name.startswith("report/")]
    assert left == ["notadb.sqlite", "report", "s.yaml", "sweeps.db"]


def test_train_py_names_itself_and_the_defaults_it_adds(capsys):
    import subprocess
    import sys

    from conftest import REPO

    shown = subprocess.run([sys.executable, str(REPO / "train.py"), "-h"], capture_output=True,
                           text=True, timeout=120, cwd=REPO.parent)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "Usage: train.py [OPTIONS]" in text
    assert "dropout 0.2 and a cosine learning-rate decay" in text
    assert main(["-e", "0"], command="train", prog="train.py") == 2
    assert one_line(capsys) == "train.py: --epochs must be >= 1; got 0"


def test_every_error_begins_with_the_program_name(capsys):
    assert main(["gradcheck", "--activation", "gelu"]) == 2
    assert one_line(capsys).startswith("fnn: Invalid value: unknown activation 'gelu'")


def test_a_short_epoch_is_not_zero_seconds():
    from fnn.cli.training import duration

    assert duration(0.04) == "40 ms" and duration(0.1) == "0.1 s" and duration(12.34) == "12.3 s"
