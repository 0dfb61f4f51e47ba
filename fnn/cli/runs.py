"""Saving and resuming ``fnn train`` runs: the checkpoint written after every epoch (and the
fallback folder when it cannot be), ``--resume`` with the settings it may and may not change,
and what Ctrl-C leaves behind."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Any

import fnn
from fnn import checkpoint, tracking
from fnn.cli.base import Interrupted, RunFailure, SavedElsewhere, UsageFailure, stopped_by
from fnn.train import FIELDS, TrainConfig

# Options --resume takes along: none of them changes the numbers of the run it continues.
RESUME_MAY_SET = frozenset({"epochs", "data_dir", "quiet", "tracker", "wandb_project",
                            "wandb_entity", "resume", "save", "overwrite",
                            "data_changed_ok"})  # fmt: skip


UNSAVED_KEPT = 10  # fallback runs kept in the cache's unsaved/ folder, the newest


def fallback_parents() -> list[Path]:
    """Where a model goes, in this order, when its ``--save`` folder cannot take it: the
    user's cache (``unsaved/``, which keeps the ``UNSAVED_KEPT`` newest), the current folder,
    the system's temporary folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        here = [Path.cwd()]
    except OSError:  # the current folder was removed
        here = []
    return [cache / "fnn" / "unsaved", *here, Path(tempfile.gettempdir())]


def resumed_run(directory: Path, values: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """The saved run of ``directory`` (its config, state and arrays), after refusing in one
    line the options that would change its result."""
    try:
        state, arrays = checkpoint.load_state(directory)
    except checkpoint.CheckpointError as error:
        raise UsageFailure(str(error)) from None
    changed = sorted(given - RESUME_MAY_SET)
    if changed:
        raise UsageFailure(
            f"--resume continues {directory}'s run with its own settings; "
            f"{', '.join('--' + name for name in changed)} would change its result (with "
            "--resume give only --epochs to train longer, --data_dir, --data_changed_ok, "
            "--tracker, --wandb_project, --wandb_entity, --quiet)"
        )
    save = values.get("save")
    if save is not None and Path(save).expanduser().resolve() != directory.resolve():
        raise UsageFailure(f"--resume {directory} saves into {directory}; leave out --save")
    saved = dict(state.get("config") or {})
    settings = {k: v for k, v in saved.items() if k in FIELDS and k != "extra"}
    if settings.get("hidden_sizes") == []:  # no hidden layer: num_layers 0 says it
        settings["hidden_sizes"] = None
    done = state["training"]["epoch"]
    finished = state.get("finished") or state["training"]["history"].get("stopped_early")
    if finished and not ("epochs" in given and values["epochs"] > done):
        raise UsageFailure(
            f"--resume {directory}: its run is complete ({done} of {saved.get('epochs')} "
            "epochs); raise --epochs to train it longer"
        )
    if "epochs" in given:
        if values["epochs"] < done:
            raise UsageFailure(
                f"--epochs {values['epochs']}: {directory}'s run has already done {done} epochs"
            )
        settings["epochs"] = values["epochs"]
    if values.get("data_dir") is not None:
        settings["data_dir"] = values["data_dir"]
    for name in ("tracker", "wandb_project", "wandb_entity"):  # as the run had them, unless given
        if name not in given and name in (saved.get("extra") or {}):
            settings[name] = saved["extra"][name]
    return {"settings": settings, "extra": saved.get("extra") or {}, "state": state,
            "arrays": arrays}  # fmt: skip


def check_data(directory: Path, saved: dict | None, now: dict, *, changed_ok: bool, say) -> None:
    """Refuse (``UsageFailure``) to resume ``directory``'s run on data other than it trained on:
    ``saved`` and ``now`` are ``data.fingerprint``s. ``changed_ok`` lets it go on, with a line
    that says so; a checkpoint without a fingerprint (format 2) is resumed with a line that its
    data cannot be checked."""
    if saved is None:
        say(f"fnn: {directory} was saved without a record of its data (an older fnn wrote it); "
            "they cannot be checked")  # fmt: skip
        return
    if saved == now:
        return
    then, new = (f"SHA-256 {d['sha256'][:12]}… of {'/'.join(f'{n:,}' for n in d['examples'])} "
                 "train/val/test examples" for d in (saved, now))  # fmt: skip
    if changed_ok:
        say(f"fnn: --resume {directory}: training goes on with other data than before ({new}, "
            f"was {then}), as --data_changed_ok asks")  # fmt: skip
        return
    raise UsageFailure(
        f"--resume {directory}: the data differ from those its run trained on ({then}; now "
        f"{new}); check --data_dir, or give --data_changed_ok to go on with these"
    )


class Saver:
    """``fit``'s ``on_checkpoint``: the whole run into ``directory`` after every epoch. A save
    that fails is reported once and tried again at the next epoch; the final one falls back to
    a folder of its own (``fallback_parents``), so a trained model is never lost while the
    process can write anywhere. ``held`` is a context in which signals wait (a save is never
    cut in half), and ``check`` raises a signal that came during the epoch but whose exception
    Python ignored (``StopSignals.check``); ``data`` the fingerprint of the data trained on."""

    def __init__(self, directory, config: TrainConfig, tracker, *, run_id=None, overwrite=False,
                 data=None, held=contextlib.nullcontext, check=lambda: None,
                 say=print):  # fmt: skip
        self.directory = None if directory is None else Path(directory).expanduser()
        self.config, self.tracker, self.say = config, tracker, say
        self.run_id = run_id or uuid.uuid4().hex
        self.overwrite, self.data, self.held, self.check = overwrite, data, held, check
        self.latest: tuple[dict, dict] | None = None
        self.saved_epoch = 0
        self.failed: str | None = None  # why the last save failed, while it has not worked since
        self.unsaved: tuple | None = None  # (model, state, arrays) of that epoch
        self.complete = False  # the finished run is saved in directory

    def _state(self, training: dict[str, Any], finished: bool) -> dict[str, Any]:
        state = {"run_id": self.run_id, "wandb_run_id": self.tracker.run_id,
                 "fnn_version": fnn.__version__, "config": self.config.to_dict(),
                 "finished": finished, "training": training}  # fmt: skip
        if self.data is not None:
            state["data"] = self.data
        return state

    def _save(self, directory: Path, model, history, finished: bool) -> Path:
        state, arrays = self.latest
        return checkpoint.save(
            directory, model, self.config.to_dict(), history,
            state=self._state(state, finished), state_arrays=arrays, overwrite=self.overwrite,
        )  # fmt: skip

    def __call__(self, model, state: dict[str, Any], arrays: dict) -> None:
        self.check()  # a stop in this epoch: the epoch is not saved, as when it went up at once
        self.latest = (state, arrays)
        if self.directory is None:
            return
        with self.held():
            try:
                self._save(self.directory, model, state["history"], finished=False)
            except (OSError, checkpoint.CheckpointError) as error:
                if not self.failed:
                    self.say(f"fnn: could not save epoch {state['epoch']} to {self.directory} "
                             f"({_reason(error)}); training goes on and tries again")  # fmt: skip
                self.failed = _reason(error)
                # kept aside (training goes on with the live arrays), for a stop before the end
                self.unsaved = copy.deepcopy((model, state, arrays))
                return
            self.saved_epoch, self.failed, self.unsaved = state["epoch"], None, None

    def final(self, model, history) -> Path | None:
        """The finished run's checkpoint, in ``directory``; when that fails, in a new folder of
        the first fallback parent that takes it, and ``SavedElsewhere`` (exit code 3) says
        where; ``RunFailure`` naming every place tried when none does."""
        if self.directory is None or self.latest is None:
            return None
        with self.held():
            return self._final(model, history)

    def _final(self, model, history) -> Path:
        try:
            path = self._save(self.directory, model, history, finished=True)
            self.complete = True
            return path
        except (OSError, checkpoint.CheckpointError) as error:
            reason = _reason(error)
        folder = self._fallback(model, history, finished=True, tried=f"{self.directory} ({reason})")
        raise SavedElsewhere(
            f"could not save to {self.directory} ({reason}); the model is in {folder} instead "
            "(exit code 3)"
        )

    def _fallback(self, model, history, *, finished: bool, tried: str) -> Path:
        """The run saved into a new folder of the first fallback parent that takes it;
        ``RunFailure`` naming every place tried when none does."""
        tried, name = [tried], f"{tracking.run_name(self.config.to_dict())[:60]}-{self.run_id[:8]}-"
        for index, parent in enumerate(fallback_parents()):
            own, folder = index == 0, None  # the first is fnn's own folder in the cache
            try:
                parent.mkdir(parents=True, exist_ok=True)
                prefix = name if own else f"fnn-unsaved-{name}"
                folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
                self._save(folder, model, history, finished=finished)
            except (OSError, checkpoint.CheckpointError) as error:
                tried.append(f"{folder or parent} ({_reason(error)})")
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                continue
            if own:
                with contextlib.suppress(OSError):  # the run is saved, whatever pruning meets
                    _prune(parent, keep=UNSAVED_KEPT)
            return folder
        raise RunFailure(f"could not save the trained model anywhere; tried {', '.join(tried)}")

    def interrupted(self, signum: int = signal.SIGINT) -> Interrupted:
        """What a signal leaves: where the run stopped, what is saved and how to continue. A
        run whose last saves failed goes to a fallback folder first."""
        how = stopped_by(signum)
        if self.complete:
            return Interrupted(f"{how} as the run ended; it is saved, finished, in "
                               f"{self.directory}", signum)  # fmt: skip
        done = self.latest[0]["epoch"] if self.latest else 0
        over = done >= self.config.epochs or (self.latest and self.latest[0]["history"].get(
            "stopped_early"))  # fmt: skip
        when = f"after epoch {done}, its last" if over else f"in epoch {done + 1}"
        folder, saved = self.directory, self.saved_epoch
        if self.directory is not None and self.unsaved is not None:
            model, state, arrays = self.unsaved
            self.latest, saved = (state, arrays), state["epoch"]
            try:
                folder = self._fallback(model, state["history"], finished=False,
                                        tried=f"{self.directory} ({self.failed})")  # fmt: skip
            except RunFailure as error:
                return Interrupted(f"{how} {when}; {error}", signum)
            when += f"; could not save to {self.directory} ({self.failed})"
        if folder is not None and saved:
            return Interrupted(
                f"{how} {when}; the run is saved up to epoch {saved} in {folder}: continue it "
                f"with `fnn train --resume {folder}`", signum
            )  # fmt: skip
        return Interrupted(
            f"{how} {when}; nothing was saved"
            + ("" if self.directory else " (with --save DIR a run can be resumed)"), signum
        )  # fmt: skip


def _prune(parent: Path, *, keep: int) -> None:
    """Remove all but the ``keep`` newest run folders of ``parent`` (fnn's own fallback folder
    in the cache, which would otherwise grow with every failed save). Only folders holding a
    saved run (its ``.fnn/`` folder) count; anything else there is left alone."""
    folders = [path for path in parent.iterdir()
               if path.is_dir() and not path.is_symlink() and (path / ".fnn").is_dir()]  # fmt: skip
    folders.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _reason(error: Exception) -> str:
    """Why a save failed, in a few words (without the folder a ``CheckpointError`` names)."""
    text = getattr(error, "strerror", None) or str(error)
    if isinstance(error, checkpoint.CheckpointError) and text.startswith("--save "):
        text = text.split(": ", 1)[-1]
    return text.splitlines()[0] if text else type(error).__name__
