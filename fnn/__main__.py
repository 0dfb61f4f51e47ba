"""``python -m fnn ARGS`` is ``fnn ARGS``."""

from fnn.cli import main

raise SystemExit(main())
