"""``load``: the standard train/test split of a data set as uint8 images and int64 labels,
read from its canonical files (IDX or the CIFAR-10 archive) or from tensorflow-datasets.
"""

from __future__ import annotations

import os

import numpy as np

from fnn.data.catalog import _dataset_key
from fnn.data.cifar import _load_cifar
from fnn.data.idx import _load_idx
from fnn.data.tfds import load_tfds

SOURCES = ("idx", "tfds")


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    source: str = "idx",
    download: bool = True,
    progress: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)`` of ``name`` ("mnist", "fashion_mnist" or
    "cifar10"): images uint8 ``(N, 28, 28)`` (CIFAR-10: ``(N, 32, 32, 3)``), labels int64
    ``(N,)``, the standard split in file order.

    With ``source="idx"`` the first complete set of the four IDX files wins, looked up in
    ``data_dir`` (holding ``<folder>/`` or the files themselves; else ``$FNN_DATA_DIR/<folder>/``),
    then ``cache_dir()/<folder>/``, then ``SYSTEM_DIR/<folder>/``; failing that (and when
    ``download``) the missing files are downloaded into the cache, checked against ``SHA256``.
    ``source="tfds"`` reads a prepared tensorflow-datasets copy instead, in TFDS's data folder
    ``data_dir`` (else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``), and never downloads:
    TFDS shuffles the order while preparing (``prepare_tfds`` makes such a copy from the IDX
    files, offline).
    CIFAR-10 is looked up in the same places as the IDX files (folder ``cifar-10/``: the six
    ``.bin`` files, loose or in ``cifar-10-batches-bin/``, or the archive itself) and otherwise
    downloaded as ``CIFAR_URL``, checked against ``CIFAR_SHA256``.
    """
    key = _dataset_key(name)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid choices: {', '.join(SOURCES)}")
    if source == "tfds":
        train, test = load_tfds(key, data_dir)
    elif key == "cifar10":
        train, test = _load_cifar(data_dir, download=download, progress=progress)
    else:
        train, test = _load_idx(key, data_dir, download=download, progress=progress)
    return train, test
