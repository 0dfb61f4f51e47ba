"""One writer per run folder, a save that is never silent and never total, a dangling
``current`` that deletes nothing, SIGTERM and SIGHUP handled as Ctrl-C, and the data checked on
resume. Every child process is stopped at a counted update or call (``run_support``), never
after a delay."""

import functools
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from run_support import (
    SMALL,
    STEPS_PER_EPOCH,
    environment,
    fnn,
    go_on,
    params_of,
    saved_epoch,
    start,
    tree_bytes,
    wait_until_paused,
)

from fnn import checkpoint
from fnn.cli.base import RunFailure
from fnn.cli.runs import Saver
from fnn.model import init_mlp
from fnn.tracking import NoTracker
from fnn.train import TrainConfig

TRAIN = ("train", "--tracker", "none", "--quiet", *SMALL)
IN_EPOCH_2 = str(STEPS_PER_EPOCH + 5)  # epoch 1 is saved by then


def held_line(folder: Path, process, option: str = "--save") -> str:
    command = " ".join(["fnn", *process.args[3:]])
    return (f"fnn: {option} {folder}: in use by another fnn run (process {process.pid}: "
            f"{command}); wait for it to end, or choose another folder")  # fmt: skip


def unlocked(folder: Path) -> dict:
    """``tree_bytes`` without the lock file, whose text names the process holding it."""
    return {k: v for k, v in tree_bytes(folder).items() if k != ".fnn/lock"}


def test_a_second_writer_is_refused_while_the_first_trains(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "rw2"
    first = start([*TRAIN, "--epochs", "3", "--save", str(folder)],
                  {**env, "FNN_TEST_PAUSE_STEP": IN_EPOCH_2})  # fmt: skip
    wait_until_paused(first)
    before = unlocked(folder)
    attempts = [
        ("--resume", ["train", "--resume", str(folder)]),
        ("--save", [*TRAIN, "--epochs", "3", "--save", str(folder)]),
        ("--save", [*TRAIN, "--epochs", "3", "--save", str(folder), "--overwrite"]),
    ]
    for option, args in attempts:
        refused = fnn(args, env)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip() == held_line(folder, first, option)
    assert unlocked(folder) == before
    go_on(first)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert saved_epoch(folder) == 3
    evaluated = fnn(["evaluate", str(folder), "--json"], env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert sorted(p.name for p in (folder / ".fnn").iterdir()) == sorted(
        ["current", "lock", os.readlink(folder / ".fnn" / "current")]
    )
    assert not (tmp_path / "cache" / "fnn" / "unsaved").exists()  # nobody fell back


def test_two_fresh_saves_of_one_folder_one_is_refused_before_training(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "new"
    first = start([*TRAIN, "--epochs", "1", "--save", str(folder)],
                  {**env, "FNN_TEST_PAUSE_STEP": "1"})  # fmt: skip
    wait_until_paused(first)  # before its first update: nothing saved yet
    second = fnn([*TRAIN, "--epochs", "1", "--save", str(folder), "--seed", "1"], env)
    assert second.returncode == 2
    assert second.stderr.strip() == held_line(folder, first)
    go_on(first)
    assert first.wait(timeout=300) == 0
    assert json.loads((folder / "config.json").read_text())["seed"] == 0


def test_the_lock_dies_with_a_killed_run(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    first = start([*TRAIN, "--epochs", "3", "--save", str(folder)],
                  {**env, "FNN_TEST_PAUSE_STEP": IN_EPOCH_2})  # fmt: skip
    wait_until_paused(first)
    first.kill()
    first.communicate()
    resumed = fnn(["train", "--resume", str(folder), "--quiet"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert saved_epoch(folder) == 3


def test_a_refused_or_failed_start_leaves_no_folder_behind(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "never" / "run"
    failed = fnn([*TRAIN, "--epochs", "1", "--save", str(folder), "--data_dir",
                  str(tmp_path / "nodata"), "--dataset", "mnist"], env)  # fmt: skip
    assert failed.returncode == 2, failed.stderr
    assert not (tmp_path / "never").exists()
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "missing")
    refused = fnn([*TRAIN, "--epochs", "1", "--save", str(dangling)], env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"fnn: --save {dangling}: is a symbolic link to {tmp_path / 'missing'}, which does not "
        "exist"
    )
    assert not (tmp_path / "missing").exists()


def test_overwrite_replaces_another_run_only_after_its_first_complete_save(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "old"
    assert fnn([*TRAIN, "--epochs", "1", "--save", str(folder)], env).returncode == 0
    before = unlocked(folder)
    new = start([*TRAIN, "--epochs", "2", "--save", str(folder), "--overwrite", "--seed", "1"],
                {**env, "FNN_TEST_PAUSE_STEP": "100"})  # fmt: skip
    wait_until_paused(new)
    assert unlocked(folder) == before  # the old run is whole while the new one trains
    new.kill()
    new.communicate()
    assert unlocked(folder) == before
    assert checkpoint.load(folder)[1]["seed"] == 0


def test_a_dangling_current_never_deletes_a_complete_run(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    assert fnn([*TRAIN, "--epochs", "1", "--save", str(folder)], env).returncode == 0
    hidden = folder / ".fnn"
    (hidden / os.readlink(hidden / "current")).rename(hidden / "7")  # current points at nothing
    before = tree_bytes(folder)
    again = fnn([*TRAIN, "--epochs", "1", "--save", str(folder), "--seed", "1"], env)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"fnn: --save {folder}: holds the checkpoint of another run; --overwrite replaces it, "
        f"`fnn train --resume {folder}` continues it"
    )
    assert tree_bytes(folder) == before
    evaluated = fnn(["evaluate", str(folder), "--json"], env)
    assert evaluated.returncode == 0, evaluated.stderr
    resumed = fnn(["train", "--resume", str(folder), "--epochs", "2", "--quiet"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert saved_epoch(folder) == 2 and (hidden / "current").resolve().is_dir()


def test_a_save_folder_gone_puts_the_model_in_a_folder_of_its_own_and_exits_3(data_dir, tmp_path):
    """The --save folder is replaced by a file during training and the cache cannot be written:
    the model goes to the current folder; with that gone too, to the temporary folder."""
    (tmp_path / "not-a-folder").write_text("x")
    env = environment(data_dir, tmp_path, XDG_CACHE_HOME=str(tmp_path / "not-a-folder"))
    for here, lands_in in (("work", "work"), ("gone", "tmp")):
        (tmp_path / here).mkdir()
        folder = tmp_path / f"run-{here}"
        paused = {**env, "FNN_TEST_PAUSE_STEP": IN_EPOCH_2}
        process = start([*TRAIN, "--epochs", "2", "--save", str(folder)], paused,
                        cwd=tmp_path / here)  # fmt: skip
        wait_until_paused(process)
        folder.rename(tmp_path / f"moved-{here}")
        folder.write_text("in the way")
        if here == "gone":
            (tmp_path / here).rmdir()
        go_on(process)
        out, err = process.communicate(timeout=300)
        assert process.returncode == 3, err
        lines = err.strip().splitlines()
        assert lines[0] == (f"fnn: could not save epoch 2 to {folder} (exists and is not a "
                            "folder); training goes on and tries again")  # fmt: skip
        (fallback,) = (tmp_path / lands_in).glob("fnn-unsaved-*")
        assert lines[1] == (f"fnn: could not save to {folder} (exists and is not a folder); "
                            f"the model is in {fallback} instead (exit code 3)")  # fmt: skip
        assert len(lines) == 2
        params, config, history = checkpoint.load(fallback)
        assert len(history["epochs"]) == 2 and "test" in history
        assert json.loads((fallback / "state.json").read_text())["finished"] is True


def test_a_model_that_fits_nowhere_is_one_line_naming_every_place_tried(tmp_path, monkeypatch):
    from fnn.cli import runs

    blocker = tmp_path / "file"
    blocker.write_text("x")
    places = [blocker / "cache", blocker / "here", blocker / "tmp"]
    monkeypatch.setattr(runs, "fallback_parents", lambda: places)
    params = init_mlp([4, 3, 2], seed=0)
    saver = Saver(blocker / "run", TrainConfig(epochs=1), NoTracker(), say=lambda line: None)
    saver(params, {"epoch": 1, "history": {"epochs": []}}, {})
    with pytest.raises(RunFailure) as raised:
        saver.final(params, {"epochs": []})
    tried = ", ".join(f"{place} (Not a directory)" for place in places)
    assert str(raised.value) == (
        f"could not save the trained model anywhere; tried {blocker / 'run'} ({blocker} is a "
        f"file, not a folder), {tried}"
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGHUP, 129), (signal.SIGTERM, 143)])
def test_sighup_and_sigterm_end_a_run_as_ctrl_c_does(signum, code, data_dir, tmp_path):
    env = environment(data_dir, tmp_path, FNN_TEST_PAUSE_STEP=IN_EPOCH_2)
    folder = tmp_path / "run"
    process = start([*TRAIN, "--epochs", "5", "--save", str(folder)], env)
    wait_until_paused(process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code
    assert err.strip() == (
        f"fnn: stopped by {signal.Signals(signum).name} in epoch 2; the run is saved up to "
        f"epoch 1 in {folder}: continue it with `fnn train --resume {folder}`"
    )
    assert sorted(p.name for p in (folder / ".fnn").iterdir()) == ["1", "current", "lock"]


def test_sigterm_during_a_save_lets_the_save_finish(data_dir, tmp_path):
    env = environment(data_dir, tmp_path, FNN_TEST_PAUSE_WRITE="8")  # epoch 2's third file
    folder = tmp_path / "run"
    process = start([*TRAIN, "--epochs", "5", "--save", str(folder)], env)
    wait_until_paused(process)
    process.send_signal(signal.SIGTERM)
    go_on(process)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143
    assert err.strip() == (
        f"fnn: stopped by SIGTERM in epoch 3; the run is saved up to epoch 2 in {folder}: "
        f"continue it with `fnn train --resume {folder}`"
    )
    assert saved_epoch(folder) == 2
    assert sorted(p.name for p in (folder / ".fnn").iterdir()) == ["2", "current", "lock"]


HAND_EDITS = {  # state.json's key path (None: the whole file) -> (value, what is said)
    "training.epoch": ("1", "training.epoch must be an integer; got '1'"),
    "training": (..., "training is missing"),
    "training.global_step": ("x", "training.global_step must be an integer; got 'x'"),
    "training.batch_rng": (np.random.MT19937(0).state, "training.batch_rng.bit_generator must "
                           "be PCG64 (the generator fnn saves); got 'MT19937'"),
    None: ("[" * 100_000, "nested deeper than 100 levels"),
    "training.epoch ": (-5, "training.epoch must be >= 0; got -5"),
    "config.learning_rate": ("0.01", "config.learning_rate must be a number; got '0.01'"),
    "config.hidden_sizes": ("8", "config.hidden_sizes must be positive widths such as "
                            "512,256; got '8'"),
    "training.history": ("x", "training.history must be a JSON object; got 'x'"),
    "config": (..., "config is missing"),
    "format": (99, "format 99, this fnn resumes format 2, 3 or 4"),
}  # fmt: skip


def test_hand_edited_state_is_one_line_naming_the_file_and_the_key(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    good = tmp_path / "good"
    assert fnn([*TRAIN, "--epochs", "1", "--save", str(good)], env).returncode == 0
    for number, (path, (value, message)) in enumerate(HAND_EDITS.items()):
        folder = tmp_path / f"edit{number}"
        shutil.copytree(good, folder, symlinks=True)
        file = folder / ".fnn" / os.readlink(folder / ".fnn" / "current") / "state.json"
        if path is None:
            file.write_text(value)
        else:
            state = json.loads(file.read_text())
            *parents, key = path.strip().split(".")
            holder = functools.reduce(lambda tree, name: tree[name], parents, state)
            if value is ...:
                del holder[key]
            else:
                holder[key] = value
            file.write_text(json.dumps(state, default=np.ndarray.tolist))
        before = tree_bytes(folder)
        refused = fnn(["train", "--resume", str(folder), "--epochs", "3"], env)
        assert refused.returncode == 2, (path, refused.stderr)
        assert refused.stderr.strip() == f"fnn: --resume {folder}: {folder}/state.json: {message}"
        assert tree_bytes(folder) == before
    config = good / ".fnn" / os.readlink(good / ".fnn" / "current") / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "learning_rate": 0.5}))
    refused = fnn(["train", "--resume", str(good), "--epochs", "3"], env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"fnn: --resume {good}: {good}/config.json: learning_rate is not the run's (state.json "
        "says 0.001)"
    )


def test_a_network_without_hidden_layers_resumes(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "linear"
    ran = fnn([*TRAIN, "--epochs", "1", "--num_layers", "0", "--save", str(folder)], env)
    assert ran.returncode == 0, ran.stderr
    resumed = fnn(["train", "--resume", str(folder), "--epochs", "2", "--quiet"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert saved_epoch(folder) == 2


def swapped_data(data_dir: Path, tmp_path: Path) -> Path:
    """A data folder whose fashion-mnist/ holds MNIST's files."""
    swapped = tmp_path / "swapped"
    (swapped / "fashion-mnist").mkdir(parents=True)
    for source in (data_dir / "mnist").glob("*.gz"):
        (swapped / "fashion-mnist" / source.name).symlink_to(source)
    return swapped


def test_resuming_on_other_data_is_refused_unless_asked(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    assert fnn([*TRAIN, "--epochs", "1", "--save", str(folder)], env).returncode == 0
    before = tree_bytes(folder)
    saved = json.loads((folder / "state.json").read_text())["data"]
    args = ["train", "--resume", str(folder), "--epochs", "2", "--quiet", "--data_dir",
            str(swapped_data(data_dir, tmp_path))]  # fmt: skip
    refused = fnn(args, env)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(
        f"fnn: --resume {folder}: the data differ from those its run trained on (SHA-256 "
        f"{saved['sha256'][:12]}… of 2,700/300/10,000 train/val/test examples; now SHA-256 "
    )
    assert line.endswith("); check --data_dir, or give --data_changed_ok to go on with these")
    assert tree_bytes(folder) == before
    allowed = fnn([*args, "--data_changed_ok"], env)
    assert allowed.returncode == 0, allowed.stderr
    assert "training goes on with other data than before" in allowed.stderr
    assert json.loads((folder / "state.json").read_text())["data"] != saved
    assert saved_epoch(folder) == 2


def test_resuming_on_the_same_data_from_another_folder_is_accepted(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    assert fnn([*TRAIN, "--epochs", "1", "--save", str(folder)], env).returncode == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    for kind in ("fashion-mnist", "mnist"):
        (copy / kind).symlink_to(data_dir / kind)
    resumed = fnn(["train", "--resume", str(folder), "--epochs", "2", "--quiet", "--data_dir",
                   str(copy)], env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == ""
    assert np.isfinite(params_of(folder)["layer_0/w"]).all()


def test_a_signal_before_training_is_one_line_and_leaves_no_folder(data_dir, tmp_path):
    env = environment(data_dir, tmp_path, FNN_TEST_PAUSE_CALL="fnn.cli.training:load_splits")
    folder = tmp_path / "new" / "run"
    process = start([*TRAIN, "--epochs", "2", "--save", str(folder)], env)
    wait_until_paused(process)  # loading the data, the folder held
    assert (folder / ".fnn" / "lock").is_file()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143
    assert err.strip() == "fnn: stopped by SIGTERM before training; nothing was saved"
    assert not (tmp_path / "new").exists()


def test_a_signal_after_the_last_epoch_keeps_the_run_and_a_resume_finishes_it(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    process = start([*TRAIN, "--epochs", "2", "--save", str(folder)],
                    {**env, "FNN_TEST_PAUSE_CALL": "fnn.tracking:NoTracker.finish"})  # fmt: skip
    wait_until_paused(process)  # both epochs saved, the test set evaluated, W&B finishing
    process.send_signal(signal.SIGTERM)
    go_on(process)  # the signal waited for W&B's record to be written
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143
    assert err.strip() == (
        f"fnn: stopped by SIGTERM after epoch 2, its last; the run is saved up to epoch 2 in "
        f"{folder}: continue it with `fnn train --resume {folder}`"
    )
    state = json.loads((folder / "state.json").read_text())
    assert state["finished"] is False and "test" not in state["training"]["history"]
    finished = fnn(["train", "--resume", str(folder), "--quiet"], env)
    assert finished.returncode == 0, finished.stderr
    state = json.loads((folder / "state.json").read_text())
    assert state["finished"] is True and "test" in state["training"]["history"]
    again = fnn(["train", "--resume", str(folder), "--quiet"], env)
    assert again.returncode == 2
    assert again.stderr.strip().endswith("its run is complete (2 of 2 epochs); raise --epochs "
                                         "to train it longer")  # fmt: skip


def test_a_signal_after_failed_saves_puts_the_run_in_a_fallback_folder(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    in_epoch_3 = str(2 * STEPS_PER_EPOCH + 5)
    process = start([*TRAIN, "--epochs", "5", "--save", str(folder)],
                    {**env, "FNN_TEST_PAUSE_STEP": f"{IN_EPOCH_2},{in_epoch_3}"})  # fmt: skip
    wait_until_paused(process)
    folder.rename(tmp_path / "moved")
    folder.write_text("in the way")
    go_on(process)
    wait_until_paused(process)  # epoch 2 could not be saved
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143
    (fallback,) = (tmp_path / "cache" / "fnn" / "unsaved").iterdir()
    assert err.strip().splitlines()[-1] == (
        f"fnn: stopped by SIGTERM in epoch 3; could not save to {folder} (exists and is not a "
        f"folder); the run is saved up to epoch 2 in {fallback}: continue it with `fnn train "
        f"--resume {fallback}`"
    )
    assert saved_epoch(fallback) == 2
    resumed = fnn(["train", "--resume", str(fallback), "--epochs", "3", "--quiet"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert saved_epoch(fallback) == 3


def test_odd_lock_files_are_one_line_and_a_users_file_is_never_written(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("important")
    cases = {
        "a folder": lambda lock: lock.mkdir(),
        "a link": lambda lock: lock.symlink_to(notes),
        "a fifo": lambda lock: os.mkfifo(lock),
    }
    for kind, make in cases.items():
        folder = tmp_path / kind.replace(" ", "-")
        (folder / ".fnn").mkdir(parents=True)
        make(folder / ".fnn" / "lock")
        refused = fnn([*TRAIN, "--epochs", "1", "--save", str(folder)], env)
        assert refused.returncode == 2, (kind, refused.stderr)
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith(f"fnn: --save {folder}: "), line
        assert "lock" in line and "Traceback" not in refused.stderr
    assert notes.read_text() == "important"


def test_a_refused_resume_leaves_no_lock_file_it_made(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    assert fnn([*TRAIN, "--epochs", "1", "--save", str(folder)], env).returncode == 0
    (folder / ".fnn" / "lock").unlink()  # as a copied checkpoint, or an older fnn's, has none
    state = folder / ".fnn" / os.readlink(folder / ".fnn" / "current") / "state.json"
    state.write_text(state.read_text().replace('"epoch": 1,', '"epoch": "1",', 1))
    before = tree_bytes(folder)
    refused = fnn(["train", "--resume", str(folder), "--epochs", "2"], env)
    assert refused.returncode == 2 and "training.epoch must be an integer" in refused.stderr
    assert tree_bytes(folder) == before


def test_a_save_that_fails_before_it_counts_removes_what_it_wrote(tmp_path, monkeypatch):
    params = init_mlp([4, 3, 2], seed=0)
    folder = checkpoint.save(tmp_path / "run", params, {"epochs": 1}, {})
    before = tree_bytes(folder)
    replace = os.replace

    def fail_to_publish(source, target):
        if Path(target).name == "current":
            raise OSError(28, "No space left on device")
        return replace(source, target)

    monkeypatch.setattr(checkpoint.os, "replace", fail_to_publish)
    with pytest.raises(OSError):
        checkpoint.save(folder, params, {"epochs": 1}, {})
    assert tree_bytes(folder) == before  # no second save folder, no current.new
