"""CIFAR-10 from its binary version: find the archive or its six batch files (or download the
archive), and read the records into HWC images and labels without extracting anything.

CIFAR-10 binary version (Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html): the archive
``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and
``test_batch.bin``, each 10,000 records of 3,073 bytes: the label (0-9), then the 32x32 image
as 1,024 red, 1,024 green and 1,024 blue bytes, rows top to bottom.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
from einops import rearrange

from fnn.data import download as remote
from fnn.data.catalog import _FIX, DATASETS, DataError, _checked, _one_line
from fnn.data.download import CIFAR_ARCHIVE

CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_TRAIN = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_SHAPE = (3, 32, 32)  # channel-major on disk
CIFAR_RECORD = 1 + 3 * 32 * 32


def _load_cifar(
    data_dir: str | os.PathLike | None, *, download: bool, progress: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    searched = remote._search_dirs(DATASETS["cifar10"], data_dir)
    for directory in searched:
        for folder in (directory / CIFAR_FOLDER, directory):
            if all((folder / name).is_file() for name in (*CIFAR_TRAIN, CIFAR_TEST)):
                return (
                    _cifar_batches([(folder / name).read_bytes() for name in CIFAR_TRAIN], folder),
                    _cifar_batches([(folder / CIFAR_TEST).read_bytes()], folder),
                )
        if (directory / CIFAR_ARCHIVE).is_file():
            return read_cifar_archive(directory / CIFAR_ARCHIVE)
    target = remote.cache_dir() / DATASETS["cifar10"]
    reason = "downloading is switched off"
    if download:
        archive, reason = remote._download_cifar(target, progress=progress)
        if archive is not None:
            return read_cifar_archive(archive)
    places = ", ".join(str(directory) for directory in dict.fromkeys(searched))
    raise DataError(
        f"cifar10: neither {CIFAR_ARCHIVE} nor its six .bin files are in {places} and {reason}. "
        f"Download {remote.CIFAR_URL} (170 MB) into {target}, or set FNN_DATA_DIR (or "
        "--data_dir) to a folder holding cifar-10/ with it."
    )


def read_cifar_archive(path: str | os.PathLike) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``(train, test)`` pairs ``(images uint8 (N, 32, 32, 3), labels int64)`` read straight
    from ``cifar-10-binary.tar.gz`` (nothing is extracted to disk)."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = {Path(member.name).name: member for member in archive.getmembers()}

            def read(name: str) -> bytes:
                if name not in members:
                    raise DataError(f"{path} has no {CIFAR_FOLDER}/{name}; {_FIX}")
                return archive.extractfile(members[name]).read()

            train = _cifar_batches([read(name) for name in CIFAR_TRAIN], path)
            test = _cifar_batches([read(CIFAR_TEST)], path)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path} is not a readable CIFAR-10 archive ({_one_line(error)}); {_FIX}"
        ) from None
    return train, test


def _cifar_batches(raws: list[bytes], origin: Path) -> tuple[np.ndarray, np.ndarray]:
    """Records of 1 label byte + 3,072 channel-major pixel bytes -> HWC images and labels."""
    for raw in raws:
        if not raw or len(raw) % CIFAR_RECORD:
            raise DataError(
                f"{origin}: a batch of {len(raw)} bytes is not a whole number of "
                f"{CIFAR_RECORD}-byte CIFAR-10 records; {_FIX}"
            )
    records = np.frombuffer(b"".join(raws), dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    channels, height, width = CIFAR_SHAPE
    images = rearrange(records[:, 1:], "n (c h w) -> n h w c", c=channels, h=height, w=width)
    return _checked(np.ascontiguousarray(images), records[:, 0].astype(np.int64), str(origin))
