"""``load``: the standard train/test split of a data set as uint8 images and int64 labels,
read from its canonical files (IDX or the CIFAR-10 archive) or from tensorflow-datasets.
"""

from __future__ import annotations

import os

import numpy as np
from einops import rearrange

from fnn.data.catalog import DataError, _checked, _dataset_key, _one_line
from fnn.data.cifar import _load_cifar
from fnn.data.idx import _load_idx

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
    ``source="tfds"`` reads a prepared tensorflow-datasets copy instead (``data_dir`` unused;
    tfds shuffles the order while preparing). CIFAR-10 is looked up in the same places (folder
    ``cifar-10/``: the six ``.bin`` files, loose or in ``cifar-10-batches-bin/``, or the archive
    itself) and otherwise downloaded as ``CIFAR_URL``, checked against ``CIFAR_SHA256``.
    """
    key = _dataset_key(name)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid choices: {', '.join(SOURCES)}")
    if source == "tfds":
        train, test = _load_tfds(key, download=download)
    elif key == "cifar10":
        train, test = _load_cifar(data_dir, download=download, progress=progress)
    else:
        train, test = _load_idx(key, data_dir, download=download, progress=progress)
    return train, test


def _load_tfds(key: str, *, download: bool) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(
            "source='tfds' needs tensorflow-datasets: pip install 'fnn[tfds]' (or use source='idx')"
        ) from None
    pairs = []
    for split in ("train", "test"):
        try:
            records = list(tfds.data_source(key, split=split, data_dir=None, download=download))
            images = np.stack([record["image"] for record in records]).astype(np.uint8)
            labels = np.asarray([record["label"] for record in records], dtype=np.int64)
        except Exception as error:  # tfds raises many kinds; the user needs one line
            raise DataError(
                f"tensorflow-datasets could not provide {key}/{split} ({_one_line(error)}); "
                "preparing it needs TensorFlow (pip install tensorflow-cpu), or use source='idx'"
            ) from None
        if images.shape[-1] == 1:  # grey images; CIFAR-10 keeps its 3 channels
            images = rearrange(images, "n h w 1 -> n h w")
        pairs.append(_checked(images, labels, f"tfds {key}/{split}"))
    return tuple(pairs)
