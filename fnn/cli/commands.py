"""Every command, registered on the app by importing its module."""

from fnn.cli import sweeps, tools, training  # noqa: F401 - each module registers its commands
from fnn.cli.base import app, run

__all__ = ["app", "run"]
