"""Running ``fnn`` in a child process whose kills and pauses land where a test says, whatever
the machine's speed: at an update's number or at a call inside a save, never after a delay.

The launcher reads, from the environment:

- ``FNN_TEST_KILL=K``: SIGKILL itself at the K-th ``os.replace`` of a save (between the
  renames that publish a checkpoint);
- ``FNN_TEST_KILL_WRITE=K``: SIGKILL itself inside a save, before the K-th file it writes;
- ``FNN_TEST_KILL_STEP=N``: SIGKILL itself just before update N (counted over the whole run,
  resumed parts included);
- ``FNN_TEST_PAUSE_STEP=N[,M...]``: before update N (and M...), print ``paused`` on stderr and
  wait for a line on stdin;
- ``FNN_TEST_PAUSE_CALL=module:name``: the same before each call of ``name`` (``Class.method``
  too) of ``module``;
- ``FNN_TEST_PAUSE_WRITE=K``: the same inside a save, before the K-th file it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SMALL = ("--train_subset", "3000", "--batch_size", "8", "--hidden_size", "64",
         "--num_layers", "1", "--log_every", "50")  # fmt: skip
STEPS_PER_EPOCH = 338  # SMALL: 2,700 training examples in batches of 8

LAUNCHER = """
import os, signal, sys

def number(name):
    return int(os.environ.get(name, "0"))

def pause():
    print("paused", file=sys.stderr, flush=True)
    sys.stdin.readline()

kill_at, kill_step = number("FNN_TEST_KILL"), number("FNN_TEST_KILL_STEP")
pause_write, kill_write = number("FNN_TEST_PAUSE_WRITE"), number("FNN_TEST_KILL_WRITE")
pause_steps = {int(n) for n in os.environ.get("FNN_TEST_PAUSE_STEP", "").split(",") if n}
pause_call = os.environ.get("FNN_TEST_PAUSE_CALL")
if pause_call:
    import functools, importlib
    module, _, path = pause_call.partition(":")
    *owners, name = path.split(".")
    owner = importlib.import_module(module)
    for part in owners:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    @functools.wraps(original)
    def call_after_pausing(*args, **kwargs):
        pause()
        return original(*args, **kwargs)

    setattr(owner, name, call_after_pausing)
if kill_at or pause_write or kill_write:
    import fnn.checkpoint as checkpoint
    calls, replace, write = {"replace": 0, "write": 0}, os.replace, checkpoint._write

    def replace_then_maybe_die(*args, **kwargs):
        calls["replace"] += 1
        if calls["replace"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return replace(*args, **kwargs)

    def write_after_maybe_pausing(*args, **kwargs):
        calls["write"] += 1
        if calls["write"] == kill_write:
            os.kill(os.getpid(), signal.SIGKILL)
        if calls["write"] == pause_write:
            pause()
        return write(*args, **kwargs)

    checkpoint.os.replace = replace_then_maybe_die
    checkpoint._write = write_after_maybe_pausing
if kill_step or pause_steps:
    import fnn.train.loop as loop
    step = loop._step

    def step_after_maybe_stopping(run, *args):
        if run.global_step + 1 == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        if run.global_step + 1 in pause_steps:
            pause()
        return step(run, *args)

    loop._step = step_after_maybe_stopping
from fnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def environment(data_dir: Path, tmp_path: Path, **extra: str) -> dict:
    """Offline W&B, caches and temporary files under ``tmp_path``, the real data."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "FNN_DATA_DIR": str(data_dir), "WANDB_MODE": "offline",
            "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path), "COLUMNS": "200",
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(tmp_path / "tmp"),
            **extra}  # fmt: skip


def fnn(args, env, **kwargs) -> subprocess.CompletedProcess:
    """``fnn ARGS`` to its end."""
    return subprocess.run([sys.executable, "-c", LAUNCHER, *args], env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL, **kwargs)  # fmt: skip


def start(args, env, **kwargs) -> subprocess.Popen:
    """``fnn ARGS`` in the background, its stdin a pipe (to end a pause)."""
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


def wait_until_paused(process: subprocess.Popen) -> list[str]:
    """The stderr lines ``process`` printed up to its ``paused``; fails if it ends first."""
    lines = []
    while (line := process.stderr.readline()) != "paused\n":
        assert line, f"ended before its pause: {lines} {process.communicate()}"
        lines.append(line)
    return lines


def go_on(process: subprocess.Popen) -> None:
    """End ``process``'s pause."""
    process.stdin.write("\n")
    process.stdin.flush()


def saved_epoch(folder: Path) -> int:
    try:
        return json.loads((folder / "state.json").read_text())["training"]["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def saved_step(folder: Path) -> int:
    try:
        return json.loads((folder / "state.json").read_text())["training"]["global_step"]
    except (OSError, ValueError, KeyError):
        return 0


def params_of(folder: Path) -> dict:
    with np.load(folder / "params.npz") as arrays:
        return {key: arrays[key] for key in arrays.files}


def tree_bytes(folder: Path) -> dict:
    """Every file's bytes and every link's target under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else os.readlink(p))
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}  # fmt: skip
