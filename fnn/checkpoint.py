"""Checkpoints: a folder holding ``params.npz``, ``config.json`` and ``history.json``.

Saving is atomic at the folder level: everything is written to a fresh sibling folder first,
which then takes the checkpoint's name, so an existing checkpoint is never half-overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fnn.tree import Params

PARAMS, CONFIG, HISTORY = "params.npz", "config.json", "history.json"


class CheckpointError(Exception):
    """A checkpoint folder that cannot be read or written (one-line message)."""


def _flatten(params: Params) -> dict[str, np.ndarray]:
    return {
        f"{layer}/{name}": array
        for layer, leaves in params.items()
        for name, array in leaves.items()
    }


def _unflatten(arrays: dict[str, np.ndarray]) -> Params:
    params: Params = {}
    for key, array in arrays.items():
        layer, name = key.split("/")
        params.setdefault(layer, {})[name] = array
    return dict(sorted(params.items(), key=lambda item: int(item[0].split("_")[1])))


def check_writable(directory: str | Path) -> Path:
    """Raise ``CheckpointError`` now if a checkpoint could not be written to ``directory`` later."""
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"--save {directory}: exists and is not a folder")
    parent = directory.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CheckpointError(f"--save {directory}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (
        directory.exists() and not os.access(directory, os.W_OK)
    ):
        raise CheckpointError(f"--save {directory}: no permission to write there")
    return directory


def save(directory: str | Path, params: Params, config: dict[str, Any], history: dict) -> Path:
    """Write the checkpoint to ``directory`` (replacing a previous one there) and return it."""
    directory = check_writable(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; a checkpoint is not
    try:
        np.savez(staging / PARAMS, **_flatten(params))
        (staging / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (staging / HISTORY).write_text(json.dumps(history, indent=2) + "\n")
        if directory.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, retired / directory.name)
            os.replace(staging, directory)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def load(directory: str | Path) -> tuple[Params, dict[str, Any], dict]:
    """``(params, config, history)`` from a checkpoint folder written by ``save``."""
    directory = Path(directory).expanduser()
    missing = [name for name in (PARAMS, CONFIG) if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{directory} is not an fnn checkpoint (missing {', '.join(missing)}); "
            "create one with `fnn train --save DIR`"
        )
    try:
        with np.load(directory / PARAMS) as arrays:
            params = _unflatten({key: arrays[key] for key in arrays.files})
        config = json.loads((directory / CONFIG).read_text())
        history_path = directory / HISTORY
        history = json.loads(history_path.read_text()) if history_path.exists() else {}
    except (OSError, ValueError, KeyError, IndexError) as error:
        raise CheckpointError(f"{directory}: unreadable checkpoint ({error})") from None
    return params, config, history
