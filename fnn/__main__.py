"""``python -m fnn ARGS`` is ``fnn ARGS``."""

from fnn.cli import entry

raise SystemExit(entry())
