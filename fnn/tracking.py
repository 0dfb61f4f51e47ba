"""Experiment tracking: where a run reports its config, metrics, figures and images.

``start("wandb", ...)`` returns a Weights & Biases tracker: online with an API key and network,
otherwise an offline run (never a login prompt) that ``wandb sync`` uploads later.
``WANDB_MODE=disabled`` or ``start("none", ...)`` record nothing. A failure inside W&B while
training is reported once and never stops the run. The core never imports this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fnn.redact import mask, masked

TRACKERS = ("wandb", "none")
ONLINE_INIT_TIMEOUT = 30.0  # seconds W&B may take to reach its server before we go offline


class Tracker(Protocol):
    def log(self, metrics: dict[str, Any], step: int | None = None) -> None: ...

    def summary(self, metrics: dict[str, Any]) -> None: ...

    def image(self, key: str, image: str | Path | np.ndarray, caption: str | None = None) -> None:
        """A PNG path or a uint8 array."""

    def confusion(
        self, key: str, labels: np.ndarray, predictions: np.ndarray, class_names: list[str]
    ) -> None: ...

    def finish(self, exit_code: int = 0) -> None:
        """End the run; a non-zero ``exit_code`` marks it failed (255: interrupted, as W&B
        marks a run stopped by Ctrl-C)."""

    run_id: str | None  # what ``start(..., run_id=)`` continues


class NoTracker:
    """A tracker that records nothing (``--tracker none``, ``WANDB_MODE=disabled``)."""

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        pass

    def summary(self, metrics: dict[str, Any]) -> None:
        pass

    def image(self, key: str, image, caption: str | None = None) -> None:
        pass

    def confusion(self, key: str, labels, predictions, class_names) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass

    run_id = None


def _short_float(value: float) -> str:
    """1e-3 -> '1e-3', 0.0005 -> '5e-4', 0.0095196 -> '9.52e-3', 0.25 -> '0.25'."""
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.3g}"


def run_name(config: dict[str, Any]) -> str:
    """A name that tells the configuration, e.g. ``hl_3_sz_128_bs_64_ac_tanh_opt_adam_lr_1e-3``;
    settings that differ from the defaults (weight decay, loss, init, dropout) are appended."""
    hidden = list(config.get("hidden_sizes") or [])
    if hidden and len(set(hidden)) == 1:
        shape = f"hl_{len(hidden)}_sz_{hidden[0]}"
    elif hidden:
        shape = f"hs_{'-'.join(map(str, hidden))}"
    else:
        shape = f"hl_{config.get('num_layers', 0)}_sz_{config.get('hidden_size', 0)}"
    parts = [
        shape,
        f"bs_{config.get('batch_size')}",
        f"ac_{config.get('activation')}",
        f"opt_{config.get('optimizer')}",
        f"lr_{_short_float(float(config.get('learning_rate', 0)))}",
    ]
    if config.get("weight_decay"):
        parts.append(f"wd_{_short_float(float(config['weight_decay']))}")
    if config.get("loss") == "mean_squared_error":
        parts.append("loss_mse")
    if config.get("weight_init", "xavier") != "xavier":
        parts.append(f"init_{config['weight_init']}")
    if config.get("lr_schedule", "constant") != "constant":
        parts.append(f"sch_{config['lr_schedule']}")
    if config.get("dropout"):
        parts.append(f"do_{_short_float(float(config['dropout']))}")
    if config.get("epochs"):
        parts.append(f"ep_{config['epochs']}")
    return "_".join(parts)


class WandbTracker:
    """A W&B run behind the ``Tracker`` interface; errors inside W&B are reported once."""

    def __init__(self, run, warn: Callable[[str], None]):
        self.run = run
        self._warn = warn
        self._broken = False

    def _guard(self, action: Callable[[], None]) -> None:
        if self._broken:
            return
        try:
            action()
        except Exception as error:  # a tracker must never stop training
            self._broken = True
            self._warn(f"W&B logging failed ({type(error).__name__}: {error}); training goes on")

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._guard(lambda: self.run.log(dict(metrics), step=step))

    def summary(self, metrics: dict[str, Any]) -> None:
        self._guard(lambda: self.run.summary.update(dict(metrics)))

    def image(self, key: str, image, caption: str | None = None) -> None:
        import wandb

        data = str(image) if isinstance(image, str | Path) else np.asarray(image, dtype=np.uint8)
        self._guard(lambda: self.run.log({key: wandb.Image(data, caption=caption)}))

    def confusion(self, key: str, labels, predictions, class_names) -> None:
        import wandb

        def log() -> None:
            chart = wandb.plot.confusion_matrix(
                y_true=np.asarray(labels).tolist(),
                preds=np.asarray(predictions).tolist(),
                class_names=list(class_names),
            )
            self.run.log({key: chart})

        self._guard(log)

    def finish(self, exit_code: int = 0) -> None:
        self._guard(lambda: self.run.finish(exit_code=exit_code))

    @property
    def run_id(self) -> str | None:
        return getattr(self.run, "id", None)


OFFLINE_MODES = ("offline", "dryrun")
DISABLED_MODES = ("disabled", "dryrun_disabled")


def _api_key_configured(wandb) -> bool:
    """True when ``wandb login`` or ``WANDB_API_KEY`` gave a key; never prompts or connects."""
    return bool(wandb.login(prompt=False, verify=False))


def online_by_default() -> bool:
    """Whether ``start("wandb", ...)`` would try to go online: a key, and no offline or
    disabled ``WANDB_MODE``."""
    if os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES + DISABLED_MODES:
        return False
    try:
        import wandb
    except ImportError:
        return False
    return _api_key_configured(wandb)


def print_error(message: str) -> None:
    """Print ``message`` to stderr (the default ``say`` of functions that report progress)."""
    print(message, file=sys.stderr)


_stderr = print_error  # the old private name, for callers that still use it


def start(
    kind: str,
    config: dict[str, Any],
    *,
    project: str = "fnn",
    entity: str | None = None,
    name: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    directory: str | Path | None = None,
    run_id: str | None = None,
    say: Callable[[str], None] = print_error,
    announce: Callable[[str], None] | None = None,
) -> Tracker:
    """Start a run of tracker ``kind`` (``"wandb"`` or ``"none"``) and return its tracker.

    W&B goes online only when an API key is configured (``wandb login`` or
    ``WANDB_API_KEY``) and ``WANDB_MODE`` is not ``offline``; if the server cannot be reached
    it falls back to an offline run. ``say`` receives W&B's trouble in one line each;
    ``announce`` (default ``say``) the line that tells where an offline run is and how to
    upload it (``fnn train -q`` drops it). ``directory`` defaults to ``$WANDB_DIR`` or the
    current folder. ``run_id`` continues that run (W&B's resume by id: ``resume="allow"``), as
    ``--resume`` does.
    """
    if kind not in TRACKERS:
        raise ValueError(f"unknown tracker {kind!r}; valid choices: {', '.join(TRACKERS)}")
    mode = os.environ.get("WANDB_MODE", "").lower()
    if kind == "none" or mode in DISABLED_MODES:
        return NoTracker()
    try:
        import wandb
    except ImportError:
        say("W&B tracking needs the wandb package (pip install wandb); nothing is tracked")
        return NoTracker()

    directory = _runs_folder(directory, say)
    if directory is None:
        return NoTracker()
    arguments = dict(
        project=project, entity=entity, config=masked(config), name=name or run_name(config),
        group=group, job_type=job_type, dir=directory, reinit="finish_previous",
        **({"id": run_id, "resume": "allow"} if run_id else {}),
    )  # fmt: skip
    try:
        return _open_run(wandb, mode, arguments, say, announce or say)
    except Exception as error:  # W&B's own trouble never stops training
        if run_id:  # e.g. the id still held by a killed process's W&B service
            say(f"W&B could not continue run {run_id} ({_first_line(error)}); this part is a "
                "new run")  # fmt: skip
            del arguments["id"], arguments["resume"]
            try:
                return _open_run(wandb, mode, arguments, say, announce or say)
            except Exception as again:
                error = again
        say(f"W&B could not start ({_first_line(error)}); nothing is tracked")
        return NoTracker()


def _runs_folder(directory, say) -> str | None:
    """The folder W&B writes runs into (``$WANDB_DIR`` or the current one), or None after one
    line when it cannot be written."""
    directory = str(directory or os.environ.get("WANDB_DIR") or Path.cwd())
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        probe = Path(directory) / f".fnn-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        say(f"W&B: cannot write runs into {directory} ({error.strerror}); nothing is tracked "
            "(set WANDB_DIR to a writable folder)")  # fmt: skip
        return None
    return directory


def _open_run(wandb, mode: str, arguments: dict, say, announce) -> WandbTracker:
    """An online run when a key is configured and the server answers, else an offline one
    (announced once per process with the command that uploads it)."""
    reason = f"WANDB_MODE={mode}"
    if mode not in OFFLINE_MODES:
        if not _api_key_configured(wandb):
            reason = "no W&B API key"
        elif not _reachable(wandb):
            reason = "W&B server unreachable"
        else:
            try:
                settings = wandb.Settings(silent=True, init_timeout=ONLINE_INIT_TIMEOUT)
                with _masked_argv():
                    run = wandb.init(mode="online", settings=settings, **arguments)
                return WandbTracker(run, say)
            except Exception as error:  # server down, bad key
                reason = f"W&B unreachable ({type(error).__name__})"
    with _masked_argv():
        run = wandb.init(mode="offline", settings=wandb.Settings(silent=True), **arguments)
    sync_dir = Path(run.dir).parent
    if not _announced:  # once per process: a sweep would repeat it for every trial
        _announced.append(sync_dir)
        announce(
            f"W&B: {reason}; offline run in {sync_dir} — upload it with `wandb sync {sync_dir}`"
            f" (all of them: `wandb sync {sync_dir.parent}/offline-run-*`)"
        )
    return WandbTracker(run, say)


_announced: list[Path] = []


@contextlib.contextmanager
def _masked_argv():
    """``sys.argv`` with credentials masked while W&B records the command line."""
    original = sys.argv
    sys.argv = [mask(argument) for argument in original]
    try:
        yield
    finally:
        sys.argv = original


REACH_TIMEOUT = 3.0  # seconds to wait for a TCP connection to the W&B server


def _reachable(wandb) -> bool:
    """Whether the W&B server accepts a TCP connection within ``REACH_TIMEOUT`` seconds, so a
    machine without network goes offline at once instead of after W&B's own retries."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=REACH_TIMEOUT):
            return True
    except OSError:
        return False


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[-1]}" if text else type(error).__name__
