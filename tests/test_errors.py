"""Every failure a user can cause ends in one line that names what is wrong and what to do,
with exit code 2 for bad input and 1 for a failure while working; never a traceback."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from mounts import small_tmpfs

TINY = ("--train_subset", "200", "--hidden_size", "8", "--num_layers", "1", "--epochs", "1",
        "--tracker", "none", "--quiet")  # fmt: skip


def fnn(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """``python -m fnn ARGS``; ``env`` entries that are None are removed. It starts a W&B
    service of its own, not this process's (which would go on holding its run's files)."""
    environment = {**os.environ, "WANDB_SERVICE": None, **(env or {})}
    environment = {key: value for key, value in environment.items() if value is not None}
    return subprocess.run([sys.executable, "-m", "fnn", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=environment, cwd=cwd)  # fmt: skip


def one_line(result: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-eps", "inf"), "fnn: --epsilon must be > 0; got inf"),
        (("-w_d", "inf"), "fnn: --weight_decay must be >= 0; got inf"),
        (("-lr", "nan"), "fnn: --learning_rate must be > 0; got nan"),
        (("--dropout", "1"), "fnn: --dropout must be in [0, 1); got 1.0"),
    ],  # fmt: skip
)
def test_non_finite_and_out_of_range_values(args, message, data_dir):
    result = fnn("train", "--data_dir", data_dir, *TINY, *args)
    assert one_line(result, 2) == message


def test_a_network_too_big_for_memory_is_refused_before_allocating(data_dir):
    result = fnn("train", "--data_dir", data_dir, *TINY, "-sz", "100000000")
    one_line(result, 2, "fnn: --hidden_size makes a network of 79,500,000,010 parameters",
             "GiB, more than the", "GiB available")  # fmt: skip


def test_config_files_that_are_binary_broken_or_mistyped(tmp_path, data_dir):
    binary, broken, typo = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    binary.write_bytes(bytes(range(256)))
    broken.write_text("epochs: 2\nlearning_rate: [0.1\n")
    typo.write_text("epochs: 2\nlerning_rate: 0.1\n")
    cases = {binary: "not a text file", broken: "line 3, column 1: expected ',' or ']'",
             typo: "unknown key 'lerning_rate'; did you mean learning_rate?"}  # fmt: skip
    for path, message in cases.items():
        line = one_line(fnn("train", "--data_dir", data_dir, *TINY, "--config", path), 2)
        assert line == f"fnn: --config {path}: {message}" or message in line


@pytest.fixture
def checkpoint_dir(tmp_path, data_dir):
    folder = tmp_path / "run"
    result = fnn("train", "--data_dir", data_dir, *TINY, "--save", folder)
    assert result.returncode == 0, result.stderr
    return folder


def current(folder):
    return folder / ".fnn" / os.readlink(folder / ".fnn" / "current")


def test_corrupt_checkpoints_in_evaluate(checkpoint_dir, data_dir):
    params, config, history = (current(checkpoint_dir) / n for n in
                               ("params.npz", "config.json", "history.json"))  # fmt: skip
    good = {p: p.read_bytes() for p in (params, config, history)}
    cases = [
        (params, good[params][:200], 2, "params.npz: unreadable checkpoint"),
        (params, b"", 2, "params.npz: unreadable checkpoint"),
        (config, b"[1, 2]", 2, "config.json: unreadable checkpoint (not a mapping)"),
        (config, b"{}", 2, "config.json: lacks dataset, activation, loss, hidden_sizes"),
        (config, json.dumps({**json.loads(good[config]), "hidden_sizes": [9]}).encode(), 2,
         "params.npz: shapes"),
        (config, json.dumps({**json.loads(good[config]), "activation": 3}).encode(), 2,
         "config.json: activation must be one of"),
        (history, b"{not json", 0, None),  # evaluation does not need the history
    ]  # fmt: skip
    for path, content, code, message in cases:
        path.write_bytes(content)
        result = fnn("evaluate", checkpoint_dir, "--data_dir", data_dir, "--json")
        if message is None:
            assert result.returncode == 0, result.stderr
            assert 0 <= json.loads(result.stdout)["accuracy"] <= 1
        else:
            one_line(result, code, str(checkpoint_dir), message)
        path.write_bytes(good[path])


def test_figures_go_in_a_folder_and_unwritable_ones_fail_first(checkpoint_dir, data_dir, tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    result = fnn("evaluate", checkpoint_dir, "--data_dir", data_dir, "--plot", figures)
    assert result.returncode == 0, result.stderr
    assert (figures / "confusion.png").is_file()
    assert f"confusion matrix figure: {figures / 'confusion.png'}" in result.stdout
    blocked = tmp_path / "file"
    blocked.write_text("x")
    one_line(fnn("samples", "--data_dir", data_dir, "--out", blocked / "x.png"), 2,
             "--out", "cannot write there")  # fmt: skip
    one_line(fnn("evaluate", checkpoint_dir, "--data_dir", data_dir, "--plot",
                 blocked / "c.png"), 2, "--plot", "cannot write there")  # fmt: skip


def test_wandb_trouble_is_one_warning_and_training_goes_on(data_dir, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    # (without --quiet, which drops the line that says where an offline run is)
    tracked = [a for a in TINY if a not in ("--tracker", "none", "--quiet")]
    env = {"WANDB_MODE": None, "WANDB_DIR": str(blocked / "wandb")}
    unwritable = fnn("train", "--data_dir", data_dir, *tracked, env=env)
    line = one_line(unwritable, 0, "W&B: cannot write runs into", "nothing is tracked")
    assert "set WANDB_DIR to a writable folder" in line
    assert "test accuracy" in unwritable.stdout
    keyed = fnn("train", "--data_dir", data_dir, *tracked, env={
        "WANDB_MODE": None, "WANDB_API_KEY": "x" * 40, "WANDB_DIR": str(tmp_path),
        "WANDB_BASE_URL": "https://127.0.0.1:9"})  # fmt: skip
    # the line of fnn's own connection check: W&B's minute of retries was not waited for
    one_line(keyed, 0, "W&B: W&B server unreachable; offline run in")


def test_piped_output_is_not_wrapped_and_states_the_configuration(data_dir):
    result = fnn("train", "--data_dir", data_dir, *[a for a in TINY if a != "--quiet"])
    start = result.stdout.splitlines()[0]
    assert len(start) > 120  # one line, not cut at 80 columns
    for part in ("dropout 0.2", "cosine schedule", "cross_entropy", "weight_decay 0",
                 "1 epoch,", "seed 0"):  # fmt: skip
        assert part in start, start


def test_version_and_gradcheck_verdict():
    import fnn as package

    assert fnn("--version").stdout.strip() == f"fnn {package.__version__}"
    checked = fnn("gradcheck", "--sizes", "5,4,3", "--activation", "tanh", "--loss",
                  "cross_entropy")  # fmt: skip
    assert checked.returncode == 0
    assert checked.stdout.strip().splitlines()[-1].endswith(": PASS (tolerance 1e-06)")
    assert np.isfinite(float(checked.stdout.split("worst: ")[1].split(":")[0]))


def test_sweep_report_top_must_be_positive():
    line = one_line(fnn("sweep-report", "x", "--top", "-1"), 2)
    assert line == "fnn: Invalid value for '--top': Input should be greater than or equal to 1"


def test_a_full_wandb_disk_is_at_most_one_line_and_training_goes_on(data_dir, tmp_path):
    with small_tmpfs(tmp_path / "disk", size="300k") as disk:
        tracked = [a for a in TINY if a not in ("--tracker", "none")]
        result = fnn("train", "--data_dir", data_dir, *tracked,
                     env={"WANDB_MODE": "offline", "WANDB_DIR": str(disk)})  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
        assert "Traceback" not in result.stderr and "test accuracy" in result.stdout
