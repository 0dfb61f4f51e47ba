"""``fnn prepare-tfds``: a real tensorflow-datasets copy of MNIST or Fashion-MNIST, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnn import data
from fnn.cli.base import RunFailure, StopSignals, UsageFailure, app, say


@app.command("prepare-tfds")
def prepare_tfds(
    name: Annotated[str, typer.Argument(help="mnist or fashion_mnist.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data_dir",
            help="TFDS data folder to write into (default: "
            "$TFDS_DATA_DIR, else ~/tensorflow_datasets).",
        ),
    ] = None,  # fmt: skip
    files: Annotated[
        Path | None,
        typer.Option(
            "--files",
            help="Folder holding the four IDX files, or mnist/ and "
            "fashion-mnist/ (default: where fnn train finds them).",
        ),
    ] = None,  # fmt: skip
) -> None:
    """Build a tensorflow-datasets copy from the local IDX files, offline (needs TensorFlow:
    pip install 'fnn[tfds-prepare]'); then train on it with --source tfds --data_dir DIR."""
    key = name.lower().replace("-", "_")
    if key not in ("mnist", "fashion_mnist"):
        raise UsageFailure(f"prepare-tfds takes mnist or fashion_mnist; got {name!r}")
    try:
        with StopSignals():  # SIGTERM and SIGHUP too: the staging folder is removed
            data.prepare_tfds(key, data_dir, files, say=say)
    except data.DataError as error:
        raise RunFailure(str(error)) from None
