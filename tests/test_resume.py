"""Nothing lost: ``fnn train --save`` survives SIGKILL at any moment, ``--resume`` continues
bit for bit, Ctrl-C says how to continue, and saving never destroys a user's files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from mounts import small_tmpfs
from run_support import (
    SMALL,
    STEPS_PER_EPOCH,
    environment,
    fnn,
    go_on,
    params_of,
    saved_epoch,
    saved_step,
    start,
    tree_bytes,
    wait_until_paused,
)

from fnn import checkpoint
from fnn.cli.base import Stopped, StopSignals


@pytest.mark.parametrize(
    "settings",
    [
        ("--optimizer", "adam", "--dropout", "0.2", "--lr_schedule", "cosine"),
        ("--optimizer", "eve", "--learning_rate", "0.001"),
        ("--optimizer", "nag", "--learning_rate", "0.01", "--dropout", "0"),
    ],  # fmt: skip
    ids=["adam", "eve", "nag"],
)
def test_a_killed_run_resumes_bit_for_bit(settings, data_dir, tmp_path, update_path):
    env = environment(data_dir, tmp_path)
    args = ("train", "--epochs", "4", "--tracker", "none", "--quiet", *SMALL, *settings)
    whole = fnn([*args, "--save", str(tmp_path / "whole")], env)
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "killed"
    mid_epoch_2 = str(STEPS_PER_EPOCH + STEPS_PER_EPOCH // 2)
    killed = fnn([*args, "--save", str(folder)], {**env, "FNN_TEST_KILL_STEP": mid_epoch_2})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert saved_epoch(folder) == 1
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
    """Kills at random updates (up to three epochs on) and inside saves: at a random file write
    or after the first or second rename. Moments are counted in updates and calls, so the run
    is cut the same way on any machine."""
    env = environment(data_dir, tmp_path)
    folder = tmp_path / "run"
    first = ("train", "--epochs", "200", "--tracker", "none", "--quiet", *SMALL,
             "--save", str(folder))  # fmt: skip
    resume = ("train", "--resume", str(folder), "--quiet", "--tracker", "none")
    rng = np.random.default_rng(0)
    for kill in range(20):
        args = resume if saved_epoch(folder) else first
        if kill % 7 == 3:  # inside a save: after its first or second rename
            moment = {"FNN_TEST_KILL": str(1 + kill % 2)}
        elif kill % 5 == 1:  # inside one of the first three saves, before a random file
            moment = {"FNN_TEST_KILL_WRITE": str(rng.integers(1, 16))}
        else:
            step = saved_step(folder) + int(rng.integers(1, 3 * STEPS_PER_EPOCH))
            moment = {"FNN_TEST_KILL_STEP": str(step)}
        done = fnn(args, {**env, **moment})
        assert done.returncode == -signal.SIGKILL, (moment, done.stderr)
        if saved_epoch(folder):
            params, config, _ = checkpoint.load(folder)  # the last complete save, whole
            assert config["epochs"] == 200 and params["layer_0"]["w"].shape == (784, 64)
            # leftovers do not pile up: at most a save killed before it counted, one killed
            # while written, and the link that was to make the first current
            names = sorted(path.name for path in (folder / ".fnn").iterdir())
            saves = [name for name in names if name.isdigit()]
            partial = [name for name in names if name.endswith(".partial")]
            assert len(saves) <= 2 and len(partial) <= 1, names
            assert set(names) - {*saves, *partial} <= {"current", "current.new", "lock"}
    assert saved_epoch(folder) > 0
    finish = fnn([*resume, "--epochs", str(saved_epoch(folder) + 1)], env)
    assert finish.returncode == 0, finish.stderr
    assert sorted(p.name for p in (folder / ".fnn").iterdir()) == sorted(
        ["current", "lock", os.readlink(folder / ".fnn" / "current")]
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


def test_a_full_disk_at_the_final_save_puts_the_model_in_a_folder_of_its_own(data_dir, tmp_path):
    env = environment(data_dir, tmp_path)
    with small_tmpfs(tmp_path / "disk", "3m") as disk:
        folder = disk / "run"
        process = start(["train", "--epochs", "3", "--tracker", "none", "--quiet", *SMALL,
                         "--save", str(folder)],
                        {**env, "FNN_TEST_PAUSE_STEP": str(STEPS_PER_EPOCH + 1)})  # fmt: skip
        wait_until_paused(process)  # epoch 1 is saved; the disk fills up during training
        with open(disk / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        go_on(process)
        out, err = process.communicate(timeout=300)
        assert process.returncode == 3, err  # trained, but saved elsewhere
        lines = err.strip().splitlines()
        assert lines[0].startswith(f"fnn: could not save epoch 2 to {folder} (")
        assert lines[0].endswith("training goes on and tries again")
        cache = tmp_path / "cache" / "fnn" / "unsaved"
        (fallback,) = cache.iterdir()
        assert lines[-1].startswith(f"fnn: could not save to {folder} (No space left on device")
        assert lines[-1].endswith(f"; the model is in {fallback} instead (exit code 3)")
        assert len(lines) == 2
        params, config, history = checkpoint.load(fallback)
        assert len(history["epochs"]) == 3 and "test" in history
        assert checkpoint.load(folder)[2]["epochs"][-1]["epoch"] == 1  # the last one that fit


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
    (conf.parent / "config.json").write_text(json.dumps(data["config"]))  # the two agree
    expected = {
        tmp_path / "missing": "missing: no such folder",
        empty: "is not an fnn checkpoint",
        truncated: "unreadable checkpoint",
        other_version: "vers/state.json: format 99, this fnn resumes format 2, 3 or 4",
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


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_saves_says_how_to_resume_and_marks_the_wandb_run(
    signum, code, said, data_dir, tmp_path
):
    env = environment(data_dir, tmp_path, FNN_TEST_PAUSE_STEP=str(STEPS_PER_EPOCH + 10))
    folder = tmp_path / "run"
    args = ("train", "--epochs", "50", "--quiet", *SMALL, "--save", str(folder))
    process = start(args, env)
    wait_until_paused(process)  # in epoch 2, epoch 1 saved
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    # fnn's own last line says it; W&B's client may print an asyncio warning at exit after it
    # ("coroutine ... was never awaited", seen once in CI), which is not fnn's to word
    mine = [line for line in err.strip().splitlines() if line.startswith("fnn: ")]
    assert mine[-1] == (
        f"fnn: {said} in epoch 2; the run is saved up to epoch 1 in {folder}: continue it with "
        f"`fnn train --resume {folder}`"
    ), err
    assert "Traceback" not in err
    assert not list((folder / ".fnn").glob("*.partial"))
    state = json.loads((folder / "state.json").read_text())
    run_id = state["wandb_run_id"]
    (run_dir,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    wandb = Path(sys.executable).parent / "wandb"  # the CLI installed beside this Python
    inspected = subprocess.run([str(wandb), "leet", "inspect", "--summary", "--json",
                                str(run_dir)], capture_output=True, text=True)  # fmt: skip
    summary, _ = json.JSONDecoder().raw_decode(inspected.stdout.strip())
    assert (summary["exit_code"], summary["state"]) == (255, "failed")  # not "finished", 0
    resumed = fnn(["train", "--resume", str(folder), "--epochs", str(saved_epoch(folder) + 1),
                   "--quiet"], environment(data_dir, tmp_path))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((folder / "state.json").read_text())["wandb_run_id"] == run_id
    assert len(list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))) == 2  # one W&B run


def test_a_signal_whose_exception_python_ignored_still_stops_the_run(monkeypatch):
    """Python runs a signal handler wherever the main thread is, a weakref callback included,
    and there prints its exception as ignored and goes on (seen once: a Ctrl-C that trained on
    to the last epoch). The signal is kept, and ``check`` (each epoch's end) raises it."""
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    class Thing:
        pass

    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as signals:
        signals.check()  # no signal yet: nothing to raise
        thing = Thing()
        reference = weakref.ref(thing, lambda _: os.kill(os.getpid(), signal.SIGINT))
        del thing  # the callback runs, and the handler inside it
        assert [type(hook.exc_value) for hook in ignored] == [Stopped]
        assert reference() is None
        with pytest.raises(Stopped) as stopped:
            signals.check()
    assert stopped.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before  # the earlier handler is back


def test_a_checkpoint_from_before_schedules_were_chains_resumes(tmp_path):
    """Scheduled runs saved the optimizer's state alone (``opt/first_moment/...``, optimizer
    ``AdamState``); such a checkpoint resumes into the chain, the schedule's count being the
    number of updates, exactly as the same checkpoint named the new way."""
    import fnn as library
    from fnn import tree_allclose
    from fnn.data import Splits
    from fnn.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    splits = Splits(x[:48], y[:48], x[48:], y[48:], x[48:], y[48:])
    config = TrainConfig(epochs=3, batch_size=16, hidden_size=5, num_layers=1,
                         lr_schedule="cosine")  # fmt: skip
    saved = []
    straight, _ = fit(config, splits, on_checkpoint=lambda m, s, a: saved.append((s, a)))
    state, arrays = saved[0]
    assert state["optimizer"] == "chain(AdamState, ScheduleState)"
    assert state["optimizer_scalars"] == {"0/count": 3, "1/count": 3}
    assert int(arrays["opt/0/count"]) == 3 and arrays["opt/0/first_moment"].ndim == 1
    # as fnn wrote it before format 4: each moment a params-shaped tree, the numbers in JSON
    old_state = {**state, "optimizer": "AdamState", "optimizer_scalars": {"count": 3}}
    old_arrays = {key: value for key, value in arrays.items() if not key.startswith("opt/")}
    layout = library.ravel(
        library.from_arrays(
            library.init_mlp([6, 5, 3]),
            {key[7:]: value for key, value in arrays.items() if key.startswith("params/")},
        )
    )[1]
    for moment in ("first_moment", "second_moment"):
        tree = layout.unravel(arrays[f"opt/0/{moment}"])
        old_arrays.update({f"opt/{moment}/{path}": leaf
                           for path, leaf in library.tree_leaves_with_path(tree)})  # fmt: skip
    assert "opt/first_moment/layer_0/w" in old_arrays
    resumed, _ = fit(config, splits, resume=(old_state, old_arrays))
    assert tree_allclose(resumed, straight, rtol=0)
