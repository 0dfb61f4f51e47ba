import json
import os

import numpy as np
import pytest

import fnn
from fnn import checkpoint


def test_round_trip(tmp_path):
    params = fnn.init_mlp([5, 4, 3, 2], seed=1)
    config = {"activation": "relu", "hidden_sizes": [4, 3]}
    history = {"epochs": [{"epoch": 1, "val_accuracy": 0.5}]}
    path = checkpoint.save(tmp_path / "run", params, config, history)
    loaded, loaded_config, loaded_history = checkpoint.load(path)
    assert list(loaded) == ["layer_0", "layer_1", "layer_2"]
    for name in params:
        for leaf in ("w", "b"):
            np.testing.assert_array_equal(loaded[name][leaf], params[name][leaf])
            assert loaded[name][leaf].dtype == params[name][leaf].dtype
    assert loaded_config == config and loaded_history == history
    assert json.loads((path / "config.json").read_text())["activation"] == "relu"


def test_overwrite_replaces_and_leaves_no_staging(tmp_path):
    target = tmp_path / "run"
    checkpoint.save(target, fnn.init_mlp([3, 2], seed=0), {"v": 1}, {})
    checkpoint.save(target, fnn.init_mlp([3, 2], seed=1), {"v": 2}, {})
    assert checkpoint.load(target)[1] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_failed_save_never_touches_the_existing_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "run"
    original = fnn.init_mlp([3, 2], seed=0)
    checkpoint.save(target, original, {"v": 1}, {"h": 1})
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}

    def broken_dumps(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.json, "dumps", broken_dumps)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(target, fnn.init_mlp([3, 2], seed=5), {"v": 2}, {})
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_errors_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(checkpoint.CheckpointError, match="not a folder"):
        checkpoint.check_writable(tmp_path / "file" / "run")
    with pytest.raises(checkpoint.CheckpointError, match="not a folder"):
        checkpoint.check_writable(tmp_path / "file")
    with pytest.raises(checkpoint.CheckpointError, match="not an fnn checkpoint"):
        checkpoint.load(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "params.npz").write_bytes(b"garbage")
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(checkpoint.CheckpointError, match="unreadable") as info:
        checkpoint.load(tmp_path / "bad")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("stop_at", range(1, 9))
def test_a_save_stopped_at_any_rename_leaves_a_whole_checkpoint(tmp_path, monkeypatch, stop_at):
    target = tmp_path / "run"
    checkpoint.save(target, fnn.init_mlp([3, 2], seed=0), {"v": 1}, {}, state={"run_id": "a"})
    (target / "mine.txt").write_text("keep")
    calls, replace = [0], checkpoint.os.replace

    def stopping_replace(*args, **kwargs):
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt  # as a kill, nothing after this point runs
        return replace(*args, **kwargs)

    monkeypatch.setattr(checkpoint.os, "replace", stopping_replace)
    try:
        checkpoint.save(target, fnn.init_mlp([3, 2], seed=1), {"v": 2}, {}, state={"run_id": "a"})
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    assert checkpoint.load(target)[1] in ({"v": 1}, {"v": 2})  # old or new, whole
    checkpoint.save(target, fnn.init_mlp([3, 2], seed=2), {"v": 3}, {}, state={"run_id": "a"})
    assert checkpoint.load(target)[1] == {"v": 3}
    left = {p.name for p in (target / ".fnn").iterdir()}
    assert left == {"current", os.readlink(target / ".fnn" / "current")}  # only the last save
    assert (target / "mine.txt").read_text() == "keep"
