"""Every command, registered on the app by importing its module."""

from fnn.cli import datasets, sweeps, tools, training  # noqa: F401 - each registers commands
from fnn.cli.base import app, run

__all__ = ["app", "run"]
