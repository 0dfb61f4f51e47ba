import re

from typer.testing import CliRunner

from fnn.cli import app

runner = CliRunner()


def test_gradcheck_prints_a_table_with_small_errors():
    result = runner.invoke(app, ["gradcheck", "--sizes", "6,5,4", "--batch_size", "3"])
    assert result.exit_code == 0, result.output
    for name in ("identity", "sigmoid", "tanh", "relu", "cross_entropy", "mean_squared_error"):
        assert name in result.output
    worst = float(re.search(r"worst: ([^:]+):", result.output).group(1))
    assert worst < 1e-6 and "PASS (tolerance 1e-06)" in result.output


def test_gradcheck_single_case_case_insensitive():
    result = runner.invoke(app, ["gradcheck", "--activation", "ReLU", "--loss", "cross_entropy"])
    assert result.exit_code == 0, result.output
    assert "relu" in result.output and "sigmoid" not in result.output


def test_gradcheck_bad_input_is_a_usage_error():
    for args in (["--activation", "gelu"], ["--sizes", "5"], ["--sizes", "a,b"], ["--eps", "0"]):
        result = runner.invoke(app, ["gradcheck", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


# ---- fnn train / train.py / evaluate / samples, through the same entry point users run ----
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
from conftest import REPO  # noqa: E402

from fnn.cli import main  # noqa: E402

QUICK = ["--train_subset", "1000", "--epochs", "1", "-nhl", "1", "-sz", "32", "--quiet"]


@pytest.mark.parametrize(
    "args, option",
    [
        (["-e", "0"], "--epochs"),
        (["-b", "0"], "--batch_size"),
        (["-nhl", "-1"], "--num_layers"),
        (["-sz", "0"], "--hidden_size"),
        (["-lr", "-1e-3"], "--learning_rate"),
        (["-lr", "0"], "--learning_rate"),
        (["-m", "1"], "--momentum"),
        (["-beta", "1.2"], "--beta"),
        (["-beta1", "-0.1"], "--beta1"),
        (["-beta2", "1"], "--beta2"),
        (["-eps", "0"], "--epsilon"),
        (["-w_d", "-1"], "--weight_decay"),
        (["--val_fraction", "1"], "--val_fraction"),
        (["--dropout", "1"], "--dropout"),
        (["-a", "gelu"], "--activation"),
        (["-o", "lion"], "--optimizer"),
        (["-l", "hinge"], "--loss"),
        (["-w_i", "orthogonal"], "--weight_init"),
        (["-d", "cifar100"], "--dataset"),
        (["--dtype", "float16"], "--dtype"),
        (["-e", "ten"], "--epochs"),
        (["--hidden_sizes", "64,x"], "--hidden_sizes"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, option, capsys):
    assert main(["train", *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert option in lines[0] and "Traceback" not in captured.err


def test_unwritable_save_and_unknown_config_keys(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--save", str(tmp_path / "file" / "run")]) == 2
    assert "--save" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 2\nlearnin_rate: 0.1\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "learnin_rate" in err and len(err.strip().splitlines()) == 1


def test_missing_data_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("fnn.data.download.SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(
        "fnn.data.download.MIRRORS",
        {k: ["http://127.0.0.1:9/"] for k in ("mnist", "fashion_mnist")},
    )
    assert main(["train", "-d", "mnist", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FNN_DATA_DIR" in err and "Traceback" not in err


def test_train_save_evaluate_and_config_file(data_dir, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("optimizer: nag\nlearning_rate: 0.05\nactivation: ReLU\nepochs: 3\n")
    run = tmp_path / "run"
    code = main(
        ["train", "--config", str(config), "--data_dir", str(data_dir), *QUICK, "--save", str(run)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "val accuracy" in out and "test accuracy" in out
    saved = json.loads((run / "config.json").read_text())
    # the file set optimizer, lr and activation; the flag --epochs 1 beat its epochs: 3
    assert (saved["optimizer"], saved["learning_rate"], saved["activation"]) == (
        "nag",
        0.05,
        "relu",
    )
    assert saved["epochs"] == 1 and saved["hidden_sizes"] == [32]

    assert main(["evaluate", str(run), "--json", "--plot", str(tmp_path / "cm.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    history = json.loads((run / "history.json").read_text())
    assert report["accuracy"] == pytest.approx(history["test"]["accuracy"])
    assert len(report["per_class"]) == 10 and (tmp_path / "cm.png").stat().st_size > 1000

    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Ankle boot" in out and "confusion matrix" in out


def test_samples_grid(data_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["samples", "-d", "mnist", "--data_dir", str(data_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_py_is_the_same_command(data_dir):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "--wandb_entity", "myname", "--wandb_project", "myprojectr",
            "--data_dir", str(data_dir), *QUICK,
        ],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    bad = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-lr", "-1e-3"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--learning_rate" in bad.stderr


def test_sweep_runs_resumes_and_reports(data_dir, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    quick = str(REPO / "configs" / "sweep_quick.yaml")
    args = ["sweep", quick, "--backend", "local", "--storage", storage, "--tracker", "none",
            "--train_subset", "600", "--data_dir", str(data_dir)]  # fmt: skip
    assert main([*args, "--count", "4"]) == 0
    assert "4 complete of 4 trials" in capsys.readouterr().out
    assert (tmp_path / "sweeps.db").exists()
    assert main([*args, "--count", "2"]) == 0  # resumes: the 4 finished trials are kept
    assert "6 complete of 6 trials" in capsys.readouterr().out
    out = tmp_path / "report"
    assert main(["sweep-report", "quick", "--storage", storage, "--out", str(out)]) == 0
    for name in ("parallel_coordinates.png", "metric_by_run.png", "importance.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    assert "val_accuracy" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("method: grid\nparameters:\n  learnin_rate:\n    values: [0.1]\n", "learnin_rate"),
        ("method: hillclimb\nparameters:\n  epochs:\n    value: 1\n", "method"),
        ("method: random\nparameters:\n  learning_rate:\n    values: [0.1, -0.1]\n", "-0.1"),
    ],
)
def test_bad_sweep_yaml_is_one_line_before_any_trial(yaml_text, expected, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("metric: {name: val_accuracy, goal: maximize}\n" + yaml_text)
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["sweep", str(config), "--backend", "local", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sweeps.db").exists()


def test_missing_data_dir_help_flag_and_case(tmp_path, capsys):
    assert main(["train", "--data_dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "--data_dir must be an existing folder" in err and len(err.strip().splitlines()) == 1
    for command in ("train", "evaluate", "sweep", "bench", "gradcheck"):
        assert main([command, "-h"]) == 0
    assert "Usage" in capsys.readouterr().out
    assert main(["train", "--tracker", "NONE", "-e", "0"]) == 2  # the tracker is accepted,
    assert "--epochs" in capsys.readouterr().err  # the bad epochs are what is reported


def test_cifar10_binary_subset_resized_trains_and_evaluates(cifar_dir, tmp_path, capsys):
    run = tmp_path / "cifar-run"
    args = ["train", "-d", "cifar10", "--classes", "automobile,cat", "--resize", "16",
            "--data_dir", str(cifar_dir), "-e", "2", "-nhl", "1", "-sz", "8", "--val_fraction",
            "0.2", "--tracker", "none", "--save", str(run)]  # fmt: skip
    assert main(args) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["classes"] == ["automobile", "cat"] and saved["resize"] == 16
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["class"] for row in report["per_class"]] == ["automobile", "cat"]
    assert sum(row["support"] for row in report["per_class"]) == 4  # 2 + 2 of the 20 test images
    out = tmp_path / "grid.png"
    assert main(["samples", "-d", "cifar10", "--data_dir", str(cifar_dir), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "cifar10", "--classes", "car,cat"], "--classes unknown class 'car'"),
        (["-d", "cifar10", "--resize", "12"], "--resize must divide cifar10's image side 32"),
        (["--resize", "0"], "--resize must be >= 1"),
    ],
)
def test_bad_classes_and_resize_are_usage_errors(args, message, capsys):
    assert main(["train", *args, "--tracker", "none"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
