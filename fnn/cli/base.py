"""The ``fnn`` command line's shared parts: the Typer app, the consoles, the two kinds of
one-line failure, small option parsers, and ``run``, which turns every error into one line on
stderr (exit code 2 for bad input, 1 for a run that failed, 3 for a model saved elsewhere than
asked, 128 + the signal's number when stopped: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import Any

import typer
import typer.core
from rich import get_console
from rich.console import Console

import fnn
from fnn.redact import mask
from fnn.registry import lookup
from fnn.train import TrainConfig

app = typer.Typer(
    help="fnn: train and compare MLPs and optimizers, in pure NumPy.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring's lines are one paragraph; [extras] stay text
)
console = get_console()  # the console the progress bar draws on, so prints interleave
errors = Console(stderr=True)
if not console.is_terminal:  # a pipe, a log, CI: long lines and tables are not cut at 80
    console.width = 10_000
if not errors.is_terminal:
    errors.width = 10_000
DEFAULT = TrainConfig()

# The value each kind of option takes, as --help shows it: a word for the reader rather than a
# Python type; a flag takes none.
METAVARS = {"<int>": "N", "<int range>": "N", "<float>": "X", "<float range>": "X",
            "<path>": "PATH", "<str>": "TEXT"}  # fmt: skip
_display_type = typer.core.TyperOption.display_type_rich


def _metavar(option: typer.core.TyperOption, ctx) -> str | None:
    if option.metavar is not None or option.is_flag:
        return option.metavar or None
    shown = _display_type(option, ctx)
    return METAVARS.get(shown, shown)


typer.core.TyperOption.display_type_rich = _metavar


# What the cli extra installs (pyproject.toml), by import name
CLI_EXTRA = ("typer", "rich", "yaml", "pooch", "tqdm", "wandb", "optuna", "matplotlib", "PIL",
             "threadpoolctl", "psycopg2")  # fmt: skip


class Stopped(KeyboardInterrupt):
    """SIGINT (Ctrl-C), SIGTERM (what ``timeout`` and job schedulers send) or SIGHUP (a closed
    terminal) while ``StopSignals`` is in force: each ends a run the way Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stopped_by(signum: int) -> str:
    """How a run's stop line begins: "interrupted" for Ctrl-C, else "stopped by SIGTERM"."""
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


class Interrupted(Exception):
    """A run stopped by a signal, with the one line that says what was kept; the exit code is
    128 + the signal's number (130 for Ctrl-C)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + signum


class SavedElsewhere(Exception):
    """A run that trained, but whose model is not where ``--save`` asked (exit code 3)."""


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP raise ``Stopped`` while in force (``with StopSignals() as
    guard``), the earlier handlers back afterwards. Inside ``with guard.held():`` a signal
    waits until the block ends (a save is not cut in half) and is raised then; should the
    block itself raise, its exception goes on instead (the process is ending either way).

    Python runs a handler between any two bytecodes, also inside a weakref callback or a
    ``__del__``, where it prints an exception as "ignored" and goes on: so the signal is kept
    (``received``), and ``guard.check()`` at a point the run passes again (each epoch's end)
    raises it there."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self._holding, self._pending = False, None
        self._previous: dict[int, Any] = {}
        self.received: int | None = None  # the first signal, once one has come

    def _handle(self, signum: int, frame) -> None:
        self.received = self.received or signum
        if self._holding:
            self._pending = signum
            return
        raise Stopped(signum)

    def check(self) -> None:
        """Raise ``Stopped`` for a signal already received: from code that runs only while
        the run goes on, which it would not have reached had that ``Stopped`` gone up."""
        if self.received is not None:
            raise Stopped(self.received)

    @contextlib.contextmanager
    def held(self):
        outer = self._holding
        self._holding = True
        try:
            yield
        finally:
            self._holding = outer
            signum = None if outer else self._pending
            if signum is not None:
                self._pending = None
        if signum is not None:
            raise Stopped(signum)

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class UsageFailure(Exception):
    """Bad input found after parsing: reported in one line with exit code 2."""


class RunFailure(Exception):
    """A run that could not complete (no data, divergence): one line, exit code 1."""


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise typer.BadParameter("expected at least two positive sizes: n_in,...,n_out")
    return sizes


def _choice(value: str, registry: dict, kind: str) -> str:
    """``value``'s registry name, or a usage error that lists the valid ones."""
    try:
        lookup(registry, value, kind)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value.lower()


def _version(value: bool) -> None:
    if value:
        console.print(f"fnn {fnn.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print fnn's version and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """fnn: train and compare MLPs and optimizers, in pure NumPy."""


def fail(line: str) -> None:
    """Print one line of trouble on stderr, credentials in URLs masked."""
    errors.print(mask(line), highlight=False, markup=False, soft_wrap=True)


def say(line: str) -> None:
    """Print one line of progress on stdout, credentials in URLs masked."""
    console.print(mask(line), highlight=False, markup=False, soft_wrap=True)


def run(argv: list[str] | None = None, *, command: str | None = None, prog: str = "fnn") -> int:
    """Run the CLI (or only its ``command``, named ``prog`` in help and errors, as
    ``python train.py`` runs ``fnn train``); errors become one line on stderr (exit 2: bad
    input, 1: failed run)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if command is None:
        target, args, options = app, args or ["--help"], {}
    else:  # its own help names, as the app's (a command alone does not inherit them)
        target = typer.main.get_command(app).commands[command]
        options = {"help_option_names": ["-h", "--help"]}
    try:
        result = target(args=args, prog_name=prog, standalone_mode=False, **options)
    except typer.Abort:
        fail("aborted")
        return 130
    except typer.TyperException as error:  # click's usage errors, as Typer vendors them
        fail(f"{prog}: {error.format_message()}")
        return error.exit_code
    except (UsageFailure, RunFailure, SavedElsewhere) as error:
        fail(f"{prog}: {error}")
        return {UsageFailure: 2, RunFailure: 1, SavedElsewhere: 3}[type(error)]
    except Interrupted as error:
        fail(f"{prog}: {error}")
        return error.exit_code
    except KeyboardInterrupt:  # (Typer turns one inside a command into exit code 130 itself)
        fail("interrupted")
        return 130
    except ModuleNotFoundError as error:  # an optional dependency a command imports late
        if (error.name or "").split(".")[0] not in CLI_EXTRA:
            raise
        fail(f"{prog}: this needs {error.name}, which is missing: pip install 'fnn[cli]'")
        return 1
    return result if isinstance(result, int) else 0
