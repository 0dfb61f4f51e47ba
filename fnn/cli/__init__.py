"""The ``fnn`` command line (Typer): every command is a thin layer over the library.

Errors are one line on stderr: exit code 2 for bad input, 1 for a run that failed; as a
process (``entry``), warnings are one line too. The command line needs the ``cli`` extra
(Typer, Rich, W&B, Optuna, matplotlib, ...): without it, ``fnn`` says in one line what to
install.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

EXTRA = "pip install 'fnn[cli]'"


def main(argv: list[str] | None = None, *, command: str | None = None, prog: str = "fnn") -> int:
    """Run the CLI with ``argv`` (default: the process's arguments), or only its ``command``
    under the name ``prog``; returns the exit code."""
    try:
        from fnn.cli.commands import run
    except ModuleNotFoundError as error:
        print(f"fnn: the command line needs {error.name}, which is missing: {EXTRA}",
              file=sys.stderr)  # fmt: skip
        return 1
    return run(argv, command=command, prog=prog)


def entry(argv: list[str] | None = None, *, command: str | None = None, prog: str = "fnn") -> int:
    """``main`` as a process runs it (the ``fnn`` script, ``python -m fnn``, ``python train.py``),
    which also prints every warning from then on as one line on stderr, as errors are:
    ``fnn: warning: ...``, with the category and the place for one that is not fnn's. ``main``
    itself leaves warnings alone, for a program or a test that calls it."""

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        from fnn.redact import mask

        text = f"{prog}: warning: {' '.join(str(message).split())}"
        if not Path(filename).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
            text += f" ({category.__name__} at {filename}:{lineno})"
        print(mask(text), file=sys.stderr)

    warnings.showwarning = one_line
    return main(argv, command=command, prog=prog)


def __getattr__(name: str):
    if name == "app":  # the Typer app with every command, for tests and tools
        from fnn.cli.commands import app

        return app
    raise AttributeError(f"module 'fnn.cli' has no attribute {name!r}")
