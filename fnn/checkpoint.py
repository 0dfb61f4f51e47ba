"""Checkpoints: fnn's files in a folder ``DIR`` that may hold anything else of the user's.

    DIR/params.npz   config.json   history.json     the model (what ``fnn evaluate`` reads)
    DIR/state.npz    state.json                      the rest of a training run (``--resume``)

Each of those names is a relative symbolic link into ``DIR/.fnn/current/``, and
``DIR/.fnn/current`` links to the folder of the latest complete save (``DIR/.fnn/<n>``). A save
writes a new ``.fnn/<n>`` in full (each file flushed to disk), then swaps ``current`` with one
atomic rename: at every moment ``DIR`` holds the old checkpoint or the new one, whole. A kill
leaves at worst an unfinished ``.fnn/<n>.partial`` (or a whole ``.fnn/<n>`` not yet current),
which the next save removes; a save that fails removes what it wrote. Files fnn did not write
are never touched (the lock file is opened without following symbolic links). The format is
NumPy ``.npz`` (read with ``allow_pickle=False``) and JSON: loading never runs code from the
files. Folders of the earlier layout (the three model files as plain files) load as before.

One process writes a run folder at a time: ``RunLock`` holds an exclusive ``flock`` on
``DIR/.fnn/lock`` from before a run's first save until it ends. The kernel drops the lock when
its process dies, so a killed run never blocks the next one. Should ``current`` ever point at
nothing (a folder removed by hand), the newest complete save still counts: it is loaded,
resumed and protected from ``--save`` like any other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fnn.train.saved import SavedStateError, check_config, check_state, read_json
from fnn.tree import Params

PARAMS, CONFIG, HISTORY = "params.npz", "config.json", "history.json"
STATE_ARRAYS, STATE = "state.npz", "state.json"
MODEL_FILES = (PARAMS, CONFIG, HISTORY)
FILES = (*MODEL_FILES, STATE_ARRAYS, STATE)
HIDDEN, CURRENT, LOCK = ".fnn", "current", "lock"
FORMAT = 4  # state.json's "format": what this version of fnn writes (3 adds the data's hash,
# 4 names state.npz's arrays as fnn.to_arrays does: flat optimizer moments, its numbers too)
FORMATS = (2, 3, 4)  # the formats it resumes


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
    if directory.is_symlink() and not directory.exists():
        raise CheckpointError(f"--save {directory}: is a symbolic link to "
                              f"{os.readlink(directory)}, which does not exist")  # fmt: skip
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


def check_target(directory: str | Path, run_id: str | None, *, overwrite: bool = False) -> Path:
    """``directory`` if the checkpoint of run ``run_id`` may be written there: writable, no
    checkpoint of another run (unless ``overwrite``), no file of the user's under one of fnn's
    names. ``CheckpointError`` (one line) otherwise; nothing is written."""
    directory = check_writable(directory)
    existing = owner(directory)
    if existing is not None and existing != str(run_id or "") and not overwrite:
        raise CheckpointError(
            f"--save {directory}: holds the checkpoint of another run; --overwrite replaces "
            f"it, `fnn train --resume {directory}` continues it"
        )
    _check_names(directory, overwrite)
    return directory


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``DIR/.fnn/lock``, taken with
    ``acquire`` before a run's first save and held until ``release`` or the process's end (the
    kernel drops it then, so a SIGKILLed run never blocks the next one). The file holds the
    holder's process id and command line, which the refusal of a second writer names.
    ``release`` removes what ``acquire`` created (folders, the lock file) when no save was made
    in between."""

    ATTEMPTS = 100  # tries against a run that removes its lock file as this one opens it

    def __init__(self, directory: str | Path, option: str = "--save"):
        self.directory = Path(directory).expanduser()
        self.option = option
        self._descriptor: int | None = None
        self._created: list[Path] = []
        self._before: Path | None = None

    @property
    def path(self) -> Path:
        return self.directory / HIDDEN / LOCK

    def acquire(self) -> RunLock:
        """Take the lock, creating ``DIR/.fnn`` if needed; ``CheckpointError`` (one line) when
        another process holds it, naming that process, or when it cannot be taken."""
        self._before = _current(self.directory)
        try:
            for _ in range(self.ATTEMPTS):
                if self._try():
                    break
            else:
                raise CheckpointError(f"{self.option} {self.directory}: could not lock "
                                      f"{self.path} (it keeps disappearing)")  # fmt: skip
        except OSError as error:
            self._remove_created()
            reason = error.strerror or str(error)
            raise CheckpointError(f"{self.option} {self.directory}: cannot lock {self.path} "
                                  f"({reason})") from None  # fmt: skip
        except CheckpointError:
            self._remove_created()
            raise
        command = " ".join(["fnn", *sys.argv[1:]]) if sys.argv else "fnn"
        with contextlib.suppress(OSError):  # a lock file only we may read still locks
            os.ftruncate(self._descriptor, 0)
            os.pwrite(self._descriptor, f"process {os.getpid()}: {command}\n".encode(), 0)
        return self

    def _try(self) -> bool:
        """One attempt: the folders made, the lock file opened (never through a symbolic link)
        and locked; False when it was removed meanwhile (try again)."""
        for folder in [*reversed(self.directory.parents), self.directory, self.directory / HIDDEN]:
            if not folder.is_dir():
                folder.mkdir()
                self._created.append(folder)
        existed = self.path.exists()
        flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(self.path, os.O_RDWR | flags, 0o644)
        except PermissionError:  # another user's lock file: reading it is enough to lock
            descriptor = os.open(self.path, os.O_RDONLY | flags)
        except FileNotFoundError:  # a folder was removed by a run that ended
            return False
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise CheckpointError(f"{self.option} {self.directory}: {self.path} is not fnn's "
                                  "lock file; move it away")  # fmt: skip
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode(errors="replace").strip()
            os.close(descriptor)
            raise CheckpointError(
                f"{self.option} {self.directory}: in use by another fnn run "
                f"({holder or 'a process that is starting or ending'}); wait for it to end, "
                "or choose another folder"
            ) from None
        if not _same_file(descriptor, self.path):  # a lock file a finishing run removed
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        if not existed:
            self._created.append(self.path)
        return True

    def release(self) -> None:
        """Let the folder go; what ``acquire`` created goes too when no save was made."""
        if self._descriptor is None:
            return
        if _current(self.directory) == self._before:
            self._remove_created()  # the lock file while still held: no other run has it
        with contextlib.suppress(OSError):
            os.ftruncate(self._descriptor, 0)  # names no process once none holds it
        os.close(self._descriptor)
        self._descriptor = None

    def _remove_created(self) -> None:
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                path.unlink() if path == self.path else path.rmdir()  # a folder only if empty
        self._created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        mine, named = os.fstat(descriptor), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def _current(directory: Path) -> Path | None:
    """The folder of ``directory``'s latest complete save, or None (none, or the old layout):
    the one ``current`` links to, or, when that link points at nothing, the newest save that
    holds all of fnn's files."""
    hidden = directory / HIDDEN
    link = hidden / CURRENT
    if link.is_symlink() and (hidden / os.readlink(link)).is_dir():
        return hidden / os.readlink(link)
    try:
        saves = [p for p in hidden.iterdir() if p.name.isdigit() and p.is_dir()]
    except OSError:
        return None
    complete = [p for p in saves if all((p / name).is_file() for name in FILES)]
    return max(complete, key=lambda p: int(p.name), default=None)


def _model_folder(directory: Path) -> Path:
    """Where ``directory``'s model files are: its current save, or itself (the old layout)."""
    return _current(directory) or directory


def owner(directory: str | Path) -> str | None:
    """The run id recorded by the checkpoint in ``directory`` ("" for a checkpoint without one,
    None when there is no checkpoint there)."""
    directory = Path(directory).expanduser()
    folder = _model_folder(directory)
    if not (folder / PARAMS).is_file():
        return None
    try:
        return str(read_json(folder / STATE).get("run_id") or "")
    except (SavedStateError, AttributeError):
        return ""


def _write(path: Path, data: bytes | None = None, arrays: dict | None = None) -> None:
    """Write ``path`` and flush it to disk before it counts."""
    with open(path, "wb") as file:
        if arrays is not None:
            np.savez(file, **arrays)
        else:
            file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _check_names(directory: Path, overwrite: bool) -> None:
    """Refuse to replace a user's file that happens to carry one of fnn's names."""
    for name in FILES:
        path = directory / name
        ours = path.is_symlink() and os.readlink(path) == f"{HIDDEN}/{CURRENT}/{name}"
        legacy = name in MODEL_FILES and (directory / PARAMS).is_file() and overwrite
        if path.exists() and not ours and not legacy:
            raise CheckpointError(
                f"--save {directory}: {path} is not a file of fnn's checkpoint; move it or "
                "save to another folder"
            )


def save(
    directory: str | Path,
    params: Params,
    config: dict[str, Any],
    history: dict,
    *,
    state: dict[str, Any] | None = None,
    state_arrays: dict[str, np.ndarray] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint into ``directory`` and return it. ``state`` and ``state_arrays``
    (JSON-ready values and named arrays) are what ``--resume`` needs; ``state["run_id"]`` names
    the run. A checkpoint of another run already there is replaced only with ``overwrite``."""
    state = {"format": FORMAT, **(state or {})}
    directory = check_target(directory, state.get("run_id"), overwrite=overwrite)
    hidden = directory / HIDDEN
    hidden.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in hidden.iterdir() if (m := re.fullmatch(r"(\d+)", p.name))]
    number = max(numbers, default=0) + 1
    staging = hidden / f"{number}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    published = False
    try:
        _write(staging / PARAMS, arrays=_flatten(params))
        _write(staging / CONFIG, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        _write(staging / HISTORY, (json.dumps(history, indent=2) + "\n").encode())
        _write(staging / STATE_ARRAYS, arrays=dict(state_arrays or {}))
        _write(staging / STATE, (json.dumps(state, indent=2) + "\n").encode())
        _fsync_folder(staging)
        os.replace(staging, hidden / str(number))
        _link_names(directory)  # (dangling until the first save's swap below)
        link = hidden / f"{CURRENT}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink(str(number), link)
        os.replace(link, hidden / CURRENT)  # the moment the new checkpoint counts
        published = True
        _fsync_folder(hidden)
    except BaseException:
        if not published:  # what this save wrote goes; the previous checkpoint stays current
            for path in (staging, hidden / str(number)):
                shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(hidden / f"{CURRENT}.new")
        raise
    _clean(hidden, keep=str(number))
    return directory


def _link_names(directory: Path) -> None:
    """``DIR/<name>`` -> ``.fnn/current/<name>`` for each of fnn's files (each swap atomic)."""
    for name in FILES:
        path, target = directory / name, f"{HIDDEN}/{CURRENT}/{name}"
        if path.is_symlink() and os.readlink(path) == target:
            continue
        temporary = directory / f".{name}.fnn-link"  # a kill's leftover is replaced here
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, path)


def _clean(hidden: Path, keep: str) -> None:
    """Remove earlier saves and anything a killed save left in ``hidden``."""
    for path in hidden.iterdir():
        if path.name in (keep, CURRENT, LOCK):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}


UNREADABLE = (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile)


def load(directory: str | Path, *, history: bool = True) -> tuple[Params, dict[str, Any], dict]:
    """``(params, config, history)`` from a checkpoint folder written by ``save`` (the history
    left unread, as ``{}``, with ``history=False``). ``CheckpointError`` names the file that is
    missing or unreadable."""
    directory = Path(directory).expanduser()
    folder = _model_folder(directory)
    missing = [name for name in (PARAMS, CONFIG) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{directory} is not an fnn checkpoint (missing {', '.join(missing)}); "
            "create one with `fnn train --save DIR`"
        )
    parts = {}
    for name, read in (
        (PARAMS, lambda p: _unflatten(_read_arrays(p))),
        (CONFIG, read_json),
        (HISTORY, lambda p: read_json(p) if p.exists() else {}),
    ):
        if name == HISTORY and not history:
            parts[name] = {}
            continue
        try:
            parts[name] = read(folder / name)
        except SavedStateError as error:  # it names the file already
            reason = str(error).split(": ", 1)[-1]
            raise CheckpointError(f"{directory}/{name}: unreadable checkpoint ({reason})") from None
        except UNREADABLE as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(f"{directory}/{name}: unreadable checkpoint ({reason})") from None
    if not isinstance(parts[CONFIG], dict):
        raise CheckpointError(f"{directory}/{CONFIG}: unreadable checkpoint (not a mapping)")
    return parts[PARAMS], parts[CONFIG], parts[HISTORY]


def load_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(state, state_arrays)`` of the checkpoint in ``directory``, as ``save`` got them;
    ``CheckpointError`` when there is none, it is unreadable or another format, or a value
    of its ``state.json`` or ``config.json`` is not what fnn writes (``fnn.train.saved``)."""
    directory = Path(directory).expanduser()
    folder = _current(directory)
    if not directory.is_dir():
        raise CheckpointError(f"--resume {directory}: no such folder")
    if owner(directory) is None:
        raise CheckpointError(
            f"--resume {directory}: is not an fnn checkpoint (`fnn train --save DIR` writes one)"
        )
    if folder is None or not (folder / STATE).is_file():
        raise CheckpointError(
            f"--resume {directory}: this checkpoint holds no training state to resume (an older "
            "fnn wrote it); train again with --save"
        )
    try:
        state = check_state(read_json(folder / STATE, str(directory / STATE)),
                            str(directory / STATE), FORMATS)  # fmt: skip
        config = check_config(read_json(folder / CONFIG, str(directory / CONFIG)),
                              str(directory / CONFIG))  # fmt: skip
        arrays = _read_arrays(folder / STATE_ARRAYS)
    except SavedStateError as error:
        raise CheckpointError(f"--resume {directory}: {error}") from None
    except UNREADABLE as error:
        raise CheckpointError(f"--resume {directory}: unreadable checkpoint ({error})") from None
    if config != state["config"]:
        key = next(k for k in config if config[k] != state["config"].get(k))
        saved = state["config"].get(key)
        raise CheckpointError(f"--resume {directory}: {directory / CONFIG}: {key} is not the "
                              f"run's ({STATE} says {saved!r})")  # fmt: skip
    return state, arrays
