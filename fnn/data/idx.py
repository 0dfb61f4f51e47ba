"""MNIST and Fashion-MNIST in their canonical IDX files: read and check them, and find (or
download) the four files of a data set.

IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero
bytes, a type byte (0x08 = uint8) and a dimension count d, then d uint32 sizes, then the data
row-major. Images are magic 0x00000803 with N, 28, 28; labels are 0x00000801 with N.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from fnn.data import download as remote
from fnn.data.catalog import _FIX, DATASETS, DataError, _checked, _one_line

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

IDX_UINT8 = 0x08
IMAGE_SHAPE = (28, 28)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The uint8 array stored in the IDX file ``path`` (gzip-compressed when it ends in ``.gz``).

    Checks the header (two zero bytes, type 0x08, dimension count) and that the data holds
    exactly prod(dims) bytes; any problem is a ``DataError`` naming the file.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as file:
                raw = file.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a valid gzip file ({_one_line(error)}); {_FIX}") from None
    except OSError as error:
        raise DataError(f"cannot read {path} ({_one_line(error)})") from None

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}); {_FIX}")
    if raw[2] != IDX_UINT8:
        raise DataError(
            f"{path} holds IDX type 0x{raw[2]:02x}; fnn reads uint8 (0x08) files only; {_FIX}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path} has a truncated or empty IDX header (ndim {ndim}); {_FIX}")
    dims = tuple(int(size) for size in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise DataError(
            f"{path} has {len(raw) - header} data bytes but its header {dims} needs "
            f"{expected} (truncated or padded); {_FIX}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


def _load_idx(
    key: str, data_dir: str | os.PathLike | None, *, download: bool, progress: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` pairs of the data set ``key`` from the first complete set of files."""
    paths = find_files(key, data_dir, download=download, progress=progress)
    train = _read_pair(paths["train_images"], paths["train_labels"])
    test = _read_pair(paths["test_images"], paths["test_labels"])
    return train, test


def _complete_set(directory: Path) -> dict[str, Path] | None:
    """The four files in ``directory`` (each ``.gz`` or uncompressed), or None if any is missing."""
    paths = {}
    for role, filename in FILES.items():
        candidates = [directory / filename, directory / filename.removesuffix(".gz")]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            return None
        paths[role] = found
    return paths


def find_files(
    key: str, data_dir: str | os.PathLike | None, *, download: bool, progress: bool
) -> dict[str, Path]:
    """The four IDX files of ``key`` by role: the first complete set in the searched folders,
    else (with ``download``) downloaded into the cache; else one ``DataError`` saying where
    they were looked for and how to provide them."""
    folder = DATASETS[key]
    searched = remote._search_dirs(folder, data_dir)
    for directory in searched:
        paths = _complete_set(directory)
        if paths is not None:
            if directory == remote.cache_dir() / folder:  # what fnn downloaded: still canonical?
                for path in paths.values():
                    remote.check_cached(key, path)
            return paths
    target = remote.cache_dir() / folder
    if not download:
        reason = "downloading is switched off"
    else:
        failure = remote._download_idx(key, FILES.values(), target, progress=progress)
        if failure is None:
            return {role: target / filename for role, filename in FILES.items()}
        reason = failure
    places = ", ".join(str(directory) for directory in dict.fromkeys(searched))
    ways = [
        f"set FNN_DATA_DIR (or --data_dir) to a folder holding {folder}/ "
        "with the four IDX .gz files",
        f"copy them into {target}",
    ]
    if key == "fashion_mnist":
        ways.append("`apt-get install dataset-fashion-mnist` (Debian/Ubuntu)")
    else:
        ways.append("run again with network access")
    raise DataError(
        f"{key}: the IDX files ({', '.join(FILES.values())}) are not in {places} and {reason}. "
        f"Provide them in one of three ways: {'; '.join(ways[:-1])}; or {ways[-1]}."
    )


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_path} holds shape {images.shape}, not (N, 28, 28); {_FIX}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds shape {labels.shape}, not (N,); {_FIX}")
    return _checked(images, labels.astype(np.int64), f"{images_path} and {labels_path}")
