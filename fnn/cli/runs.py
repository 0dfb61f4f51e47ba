"""Saving and resuming ``fnn train`` runs: the checkpoint written after every epoch (and the
fallback folder when it cannot be), ``--resume`` with the settings it may and may not change,
and what Ctrl-C leaves behind."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import fnn
from fnn import checkpoint, tracking
from fnn.cli.base import Interrupted, UsageFailure
from fnn.train import FIELDS, TrainConfig

# Options --resume takes along: none of them changes the numbers of the run it continues.
RESUME_MAY_SET = frozenset({"epochs", "data_dir", "quiet", "tracker", "wandb_project",
                            "wandb_entity", "resume", "save", "overwrite"})  # fmt: skip


def fallback_folder(name: str) -> Path:
    """Where a model goes when its ``--save`` folder cannot take it: the user's cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fnn" / "unsaved" / name


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
            "--resume give only --epochs to train longer, --data_dir, --tracker, --quiet)"
        )
    save = values.get("save")
    if save is not None and Path(save).expanduser().resolve() != directory.resolve():
        raise UsageFailure(f"--resume {directory} saves into {directory}; leave out --save")
    saved = dict(state.get("config") or {})
    settings = {k: v for k, v in saved.items() if k in FIELDS and k != "extra"}
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
    return {"settings": settings, "extra": saved.get("extra") or {}, "state": state,
            "arrays": arrays}  # fmt: skip


class Saver:
    """``fit``'s ``on_checkpoint``: the whole run into ``directory`` after every epoch. A save
    that fails is reported once and tried again at the next epoch; the final one falls back
    to the user's cache, so a trained model is never lost."""

    def __init__(self, directory, config: TrainConfig, tracker, *, run_id=None, overwrite=False,
                 say=print):  # fmt: skip
        self.directory = None if directory is None else Path(directory).expanduser()
        self.config, self.tracker, self.say = config, tracker, say
        self.run_id = run_id or uuid.uuid4().hex
        self.overwrite = overwrite
        self.latest: tuple[dict, dict] | None = None
        self.saved_epoch = 0
        self.failed = False

    def _state(self, training: dict[str, Any], finished: bool) -> dict[str, Any]:
        return {"run_id": self.run_id, "wandb_run_id": self.tracker.run_id,
                "fnn_version": fnn.__version__, "config": self.config.to_dict(),
                "finished": finished, "training": training}  # fmt: skip

    def _save(self, directory: Path, model, history, finished: bool) -> Path:
        state, arrays = self.latest
        return checkpoint.save(
            directory, model, self.config.to_dict(), history,
            state=self._state(state, finished), state_arrays=arrays, overwrite=self.overwrite,
        )  # fmt: skip

    def __call__(self, model, state: dict[str, Any], arrays: dict) -> None:
        self.latest = (state, arrays)
        if self.directory is None:
            return
        try:
            self._save(self.directory, model, state["history"], finished=False)
        except (OSError, checkpoint.CheckpointError) as error:
            if not self.failed:
                self.say(f"fnn: could not save epoch {state['epoch']} to {self.directory} "
                         f"({_reason(error)}); training goes on and tries again")  # fmt: skip
            self.failed = True
            return
        self.saved_epoch = state["epoch"]

    def final(self, model, history) -> Path | None:
        """The finished run's checkpoint, in ``directory`` or else in the fallback folder."""
        if self.directory is None or self.latest is None:
            return None
        try:
            return self._save(self.directory, model, history, finished=True)
        except (OSError, checkpoint.CheckpointError) as error:
            name = f"{tracking.run_name(self.config.to_dict())}-{self.run_id[:8]}"
            folder = self._save(fallback_folder(name), model, history, finished=True)
            self.say(f"fnn: could not save to {self.directory} ({_reason(error)}); the model is "
                     f"in {folder} instead")  # fmt: skip
            return folder

    def interrupted(self) -> Interrupted:
        """What Ctrl-C during training leaves: the epochs saved and how to continue."""
        epoch_running = (self.latest[0]["epoch"] if self.latest else 0) + 1
        if self.directory is not None and self.saved_epoch:
            return Interrupted(
                f"interrupted in epoch {epoch_running}; the run is saved up to epoch "
                f"{self.saved_epoch} in {self.directory}: continue it with "
                f"`fnn train --resume {self.directory}`"
            )
        return Interrupted(
            f"interrupted in epoch {epoch_running}; nothing was saved"
            + ("" if self.directory else " (with --save DIR a run can be resumed)")
        )


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.splitlines()[0] if text else type(error).__name__
