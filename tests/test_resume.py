"""Nothing lost: ``fnn train --save`` survives SIGKILL at any moment, ``--resume`` continues
bit for bit, Ctrl-C says how to continue, and saving never destroys a user's files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fnn import checkpoint

SMALL = ("--train_subset", "3000", "--batch_size", "8", "--hidden_size", "64",
         "--num_layers", "1", "--log_every", "50")  # fmt: skip
# The launcher can make the process kill itself at the K-th os.replace of a save (FNN_TEST_KILL),
# so that a kill lands between the renames of a checkpoint write.
LAUNCHER = """
import os, signal, sys
kill_at = int(os.environ.get("FNN_TEST_KILL", "0"))
if kill_at:
    import fnn.checkpoint as checkpoint
    calls, replace = [0], os.replace

    def replace_then_maybe_die(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return replace(*args, **kwargs)

    checkpoint.os.replace = replace_then_maybe_die
from fnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def environment(data_dir: Path, tmp_path: Path, **extra: str) -> dict:
    return {**os.environ, "FNN_DATA_DIR": str(data_dir), "WANDB_MODE": "offline",
            "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path), "COLUMNS": "200",
            "XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}  # fmt: skip


def fnn(args, env, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LAUNCHER, *args], env=env, capture_output=True,
                          text=True, timeout=600, **kwargs)  # fmt: skip


def start(args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def saved_epoch(folder: Path) -> int:
    try:
        return json.loads((folder / "state.json").read_text())["training"]["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def wait_for_epoch(process: subprocess.Popen, folder: Path, epoch: int) -> None:
    deadline = time.monotonic() + 120
    while saved_epoch(folder) < epoch:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


def params_of(folder: Path) -> dict:
    with np.load(folder / "params.npz") as arrays:
        return {key: arrays[key] for key in arrays.files}


@pytest.mark.parametrize(
    "settings",
    [
        ("--optimizer", "adam", "--dropout", "0.2", "--lr_schedule", "cosine"),
        ("--optimizer", "eve", "--learning_rate", "0.001"),
        ("--optimizer", "nag", "--learning_rate", "0.01", "--dropout", "0"),
    ],  # fmt: skip
    ids=["adam", "eve", "nag"],
)
def test_a_killed_run_resumes_bit_for_bit(settings, data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    args = ("train", "--epochs", "4", "--tracker", "none", "--quiet", *SMALL, *settings)
    whole = fnn([*args, "--save", str(tmp_path / "whole")], env)
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "killed"
    process = start([*args, "--save", str(folder)], env)  # killed mid-epoch 2
    wait_for_epoch(process, folder, 1)
    time.sleep(0.05)
    process.kill()
    process.communicate()
    assert saved_epoch(folder) in (1, 2)
    before = saved_epoch(folder)  # then killed inside the next save, between its renames
    killed = fnn(["train", "--resume", str(folder), "--quiet"], {**env, "FNN_TEST_KILL": "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert saved_epoch(folder) == before and checkpoint.load(folder)
    resumed = fnn(["train", "--resume", str(folder), "--quiet"], env)
    assert resumed.returncode == 0, resumed.stderr
    ours, reference = params_of(folder), params_of(tmp_path / "whole")
    assert ours.keys() == reference.keys()
    assert all(np.array_equal(ours[key], reference[key]) for key in ours)
    history = json.loads((folder / "history.json").read_text())
    expected = json.loads((tmp_path / "whole" / "history.json").read_text())
    for got, want in zip(history["epochs"], expected["epochs"], strict=True):
        assert {**got, "seconds": 0} == {**want, "seconds": 0}
    assert history["test"] == expected["test"]


def test_twenty_kills_at_random_moments_never_lose_the_checkpoint(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    first = ("train", "--epochs", "200", "--tracker", "none", "--quiet", *SMALL,
             "--save", str(folder))  # fmt: skip
    resume = ("train", "--resume", str(folder), "--quiet", "--tracker", "none")
    rng = np.random.default_rng(0)
    for kill in range(20):
        args = resume if saved_epoch(folder) else first
        if kill % 7 == 3:  # inside a save: after its first or second rename
            done = fnn(args, {**env, "FNN_TEST_KILL": str(1 + kill % 2)})
            assert done.returncode == -signal.SIGKILL, done.stderr
        else:
            process = start(args, env)
            if kill == 0:  # the first run gets a checkpoint written, however slow the machine
                wait_for_epoch(process, folder, 1)
            time.sleep(rng.uniform(0.5, 4.0))
            process.kill()
            process.communicate()
        if saved_epoch(folder):
            params, config, _ = checkpoint.load(folder)  # the last complete save, whole
            assert config["epochs"] == 200 and params["layer_0"]["w"].shape == (784, 64)
            assert len(list((folder / ".fnn").iterdir())) <= 4  # leftovers do not pile up
    assert saved_epoch(folder) > 0
    finish = fnn([*resume, "--epochs", str(saved_epoch(folder) + 1)], env)
    assert finish.returncode == 0, finish.stderr
    assert sorted(p.name for p in (folder / ".fnn").iterdir()) == sorted(
        ["current", os.readlink(folder / ".fnn" / "current")]
    )  # the next save removed every staging folder
    evaluated = fnn(["evaluate", str(folder), "--json"], env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert 0 <= json.loads(evaluated.stdout)["accuracy"] <= 1


def test_saving_keeps_the_users_files_and_asks_before_replacing_another_run(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    (folder / "confusion.png").write_bytes(b"\x89PNG figure")
    args = ("train", "--epochs", "1", "--tracker", "none", "--quiet", *SMALL, "--save",
            str(folder))  # fmt: skip
    assert fnn(args, env).returncode == 0
    before = params_of(folder)
    again = fnn(args, env)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"fnn: --save {folder}: holds the checkpoint of another run; --overwrite replaces it, "
        f"`fnn train --resume {folder}` continues it"
    )
    assert all(np.array_equal(before[k], v) for k, v in params_of(folder).items())
    replaced = fnn([*args, "--overwrite", "--seed", "1"], env)
    assert replaced.returncode == 0, replaced.stderr
    assert not np.array_equal(params_of(folder)["layer_0/w"], before["layer_0/w"])
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "confusion.png").read_bytes() == b"\x89PNG figure"


def test_a_full_disk_at_the_final_save_puts_the_model_in_the_cache(data_dir, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        env = environment(data_dir, tmp_path)
        folder = disk / "run"
        process = start(["train", "--epochs", "3", "--tracker", "none", "--quiet", *SMALL,
                         "--save", str(folder)], env)  # fmt: skip
        wait_for_epoch(process, folder, 1)
        with open(disk / "filler", "wb") as filler:  # the disk fills up during training
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        lines = err.strip().splitlines()
        assert lines[0].startswith(f"fnn: could not save epoch 2 to {folder} (")
        assert lines[0].endswith("training goes on and tries again")
        cache = tmp_path / "cache" / "fnn" / "unsaved"
        assert lines[-1].startswith(f"fnn: could not save to {folder} (")
        assert f"the model is in {cache}/" in lines[-1] and len(lines) == 2
        (fallback,) = cache.iterdir()
        params, config, history = checkpoint.load(fallback)
        assert len(history["epochs"]) == 3 and "test" in history
        assert checkpoint.load(folder)[2]["epochs"][-1]["epoch"] == 1  # the last one that fit
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def tree_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else os.readlink(p))
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}  # fmt: skip


def test_bad_resume_folders_are_one_line_and_change_nothing(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    good = tmp_path / "good"
    ran = fnn(["train", "--epochs", "1", "--tracker", "none", "--quiet", *SMALL, "--save",
               str(good)], env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    truncated, other_version, other_config = (tmp_path / n for n in ("trunc", "vers", "conf"))
    for copy in (truncated, other_version, other_config):
        shutil.copytree(good, copy, symlinks=True)
    state_npz = truncated / ".fnn" / os.readlink(truncated / ".fnn" / "current") / "state.npz"
    state_npz.write_bytes(state_npz.read_bytes()[:100])
    state_json = other_version / ".fnn" / os.readlink(other_version / ".fnn" / "current")
    data = json.loads((state_json / "state.json").read_text())
    (state_json / "state.json").write_text(json.dumps({**data, "format": 99}))
    conf = other_config / ".fnn" / os.readlink(other_config / ".fnn" / "current") / "state.json"
    data = json.loads(conf.read_text())
    data["config"]["hidden_sizes"] = [32]
    data["finished"], data["config"]["epochs"] = False, 2
    conf.write_text(json.dumps(data))
    expected = {
        tmp_path / "missing": "missing: no such folder",
        empty: "is not an fnn checkpoint",
        truncated: "unreadable checkpoint",
        other_version: "checkpoint format 99, this fnn resumes format 2",
        other_config: "conf: the checkpoint's params/layer_0/b is of shape (64,) where the run "
        "has (32,)",
    }
    for folder, message in expected.items():
        before = tree_bytes(folder) if folder.exists() else None
        result = fnn(["train", "--resume", str(folder), "--tracker", "none"], env)
        assert result.returncode == 2, (folder, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert (tree_bytes(folder) if folder.exists() else None) == before
    changed = fnn(["train", "--resume", str(good), "--learning_rate", "0.5"], env)
    assert changed.returncode == 2
    assert "--learning_rate would change its result" in changed.stderr
    complete = fnn(["train", "--resume", str(good)], env)
    assert complete.returncode == 2
    assert complete.stderr.strip().endswith(
        "its run is complete (1 of 1 epochs); raise --epochs to train it longer"
    )


def test_ctrl_c_saves_says_how_to_resume_and_marks_the_wandb_run(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    args = ("train", "--epochs", "50", "--quiet", *SMALL, "--save", str(folder))
    process = start(args, env)
    wait_for_epoch(process, folder, 1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130
    (line,) = [line for line in err.splitlines() if line.startswith("fnn: interrupted")]
    assert line.endswith(f"in {folder}: continue it with `fnn train --resume {folder}`"), err
    state = json.loads((folder / "state.json").read_text())
    run_id = state["wandb_run_id"]
    (run_dir,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    wandb = Path(sys.executable).parent / "wandb"  # the CLI installed beside this Python
    inspected = subprocess.run([str(wandb), "leet", "inspect", "--summary", "--json",
                                str(run_dir)], capture_output=True, text=True)  # fmt: skip
    summary, _ = json.JSONDecoder().raw_decode(inspected.stdout.strip())
    assert (summary["exit_code"], summary["state"]) == (255, "failed")  # not "finished", 0
    resumed = fnn(["train", "--resume", str(folder), "--epochs", str(saved_epoch(folder) + 1),
                   "--quiet"], env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((folder / "state.json").read_text())["wandb_run_id"] == run_id
    assert len(list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))) == 2  # one W&B run
