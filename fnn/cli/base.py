"""The ``fnn`` command line's shared parts: the Typer app, the consoles, the two kinds of
one-line failure, small option parsers, and ``run``, which turns every error into one line on
stderr (exit code 2 for bad input, 1 for a run that failed, 130 when interrupted)."""

from __future__ import annotations

import sys

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


class Interrupted(Exception):
    """Ctrl-C during a run, with the one line that says what was kept (exit code 130)."""


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


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; errors become one line on stderr (exit 2: bad input, 1: failed run)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        result = app(args=args or ["--help"], prog_name="fnn", standalone_mode=False)
    except typer.Abort:
        fail("aborted")
        return 130
    except typer.TyperException as error:  # click's usage errors, as Typer vendors them
        context = getattr(error, "ctx", None)
        prefix = f"{context.command_path}: " if context is not None else "fnn: "
        fail(f"{prefix}{error.format_message()}")
        return error.exit_code
    except (UsageFailure, RunFailure, Interrupted) as error:
        fail(f"fnn: {error}")
        return {UsageFailure: 2, RunFailure: 1, Interrupted: 130}[type(error)]
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except ModuleNotFoundError as error:  # an optional dependency a command imports late
        if (error.name or "").split(".")[0] not in CLI_EXTRA:
            raise
        fail(f"fnn: this needs {error.name}, which is missing: pip install 'fnn[cli]'")
        return 1
    return result if isinstance(result, int) else 0
