"""tensorflow-datasets beside the IDX files: ``prepare_tfds`` builds a real TFDS copy of MNIST or
Fashion-MNIST from the local IDX files, offline, and ``load_tfds`` reads a prepared copy.

Preparing needs TensorFlow (TFDS extracts the ``.gz`` files with it): ``pip install
'fnn[tfds-prepare]'``. Reading a prepared copy needs only ``pip install 'fnn[tfds]'``. TFDS
shuffles the examples while preparing, so a copy holds the IDX files' images and labels in
another (fixed) order. tensorflow-datasets is imported inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from einops import rearrange

from fnn.data.catalog import DATASETS, DataError, _checked, _dataset_key, _one_line
from fnn.data.download import sha256_of
from fnn.data.idx import FILES, find_files

# sha256 of each canonical file's decompressed content: MNIST's as published with its
# reconstruction (../datasets/README.md); Fashion-MNIST's computed from Zalando's published
# downloads (their .gz sha256 in fnn.data.SHA256; decompressed md5 f4a8712d..., 9018921c...,
# 8181f547..., 15d48437... as published). A file whose gzip wrapper differs still qualifies.
CONTENT_SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
INSTALL_READ = "pip install 'fnn[tfds]'"
INSTALL_PREPARE = "pip install 'fnn[tfds-prepare]'"


def _tfds(*, prepare: bool):
    """``tensorflow_datasets``, or one ``DataError`` naming what to install."""
    needed = ["tensorflow_datasets", "importlib_resources", "PIL"]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if prepare and importlib.util.find_spec("tensorflow") is None:
        missing.append("tensorflow")
    if missing:
        what = "preparing a tfds copy" if prepare else "source='tfds'"
        command = INSTALL_PREPARE if prepare or "tensorflow" in missing else INSTALL_READ
        raise DataError(f"{what} needs {', '.join(missing)}: {command}")
    import tensorflow_datasets as tfds

    return tfds


def tfds_dir(data_dir: str | os.PathLike | None) -> Path:
    """The TFDS data folder: ``data_dir``, else ``$TFDS_DATA_DIR``, else TFDS's default
    (``~/tensorflow_datasets``). Read at each call: TFDS itself reads the environment only once,
    when it is imported."""
    chosen = data_dir or os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets"
    return Path(chosen).expanduser()


def _content_sha256(path: Path) -> str:
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as stream:
        return sha256_of(stream)


def _canonical_files(key: str, files_dir: str | os.PathLike | None) -> dict[str, Path]:
    """The four IDX files of ``key`` (``.gz`` or not), found as ``fnn.data.load`` finds them,
    each checked to hold the canonical content: a file of another data set (the trap of one
    folder for both) or a damaged one is refused in one line."""
    try:
        paths = find_files(key, files_dir, download=False, progress=False)
    except DataError:
        where = files_dir or os.environ.get("FNN_DATA_DIR") or "FNN_DATA_DIR or fnn's cache"
        raise DataError(
            f"{key}: its four IDX files are not in {where}; give the folder that holds them "
            f"(or {DATASETS[key]}/) as files_dir (`fnn prepare-tfds --files DIR`)"
        ) from None
    for role, path in paths.items():
        try:
            found = _content_sha256(path)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise DataError(f"{path}: cannot read it ({_one_line(error)})") from None
        if found != CONTENT_SHA256[key][role]:
            raise DataError(
                f"{path} is neither the canonical download of {key}'s {FILES[role]} nor its "
                f"canonical content (sha256 of the content {found[:12]}..., expected "
                f"{CONTENT_SHA256[key][role][:12]}...); refusing to prepare tfds {key} from it"
            )
    return paths


def prepare_tfds(
    name: str,
    data_dir: str | os.PathLike | None = None,
    files_dir: str | os.PathLike | None = None,
    *,
    say: Callable[[str], None] = print,
) -> Path:
    """Build a real TFDS copy (ArrayRecord) of ``name`` ("mnist" or "fashion_mnist") in
    ``tfds_dir(data_dir)`` from the IDX files in ``files_dir`` (found as ``load`` finds them:
    ``files_dir`` or ``$FNN_DATA_DIR``, then fnn's cache), offline; returns the copy's folder.
    A copy that is there already is kept. Says one line (TFDS's own progress bars go to
    stderr).

    Each file must hold the canonical content (``CONTENT_SHA256``); its gzip wrapper may differ
    from the published download (as the MNIST files reconstructed here do). TFDS's own check
    hashes the ``.gz`` bytes, so the files are staged where TFDS keeps what it downloaded
    (``tensorflow_datasets.core.download.resource``: each under its download name, with the
    ``.INFO`` file TFDS writes beside a download, which is not hashed again). Each data set is
    staged in a fresh folder of its own, removed afterwards: TFDS reuses an extraction by file
    name, so two data sets staged together would share one set of images.
    """
    key = _dataset_key(name)
    if key not in CONTENT_SHA256:
        raise DataError(f"prepare_tfds takes mnist or fashion_mnist, not {key}")
    started, root = time.perf_counter(), tfds_dir(data_dir)
    paths = _canonical_files(key, files_dir)
    tfds = _tfds(prepare=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        builder = tfds.builder(key, data_dir=str(root), file_format="array_record")
        if builder.is_prepared():
            say(f"tfds {key} {builder.version} is already prepared in {builder.data_dir}; kept")
            return Path(builder.data_dir)
        _stage_and_prepare(tfds, key, builder, paths, root)
    except (OSError, ValueError) as error:  # a folder that cannot be written, another format
        raise DataError(f"tfds could not prepare {key} in {root} ({_one_line(error)}); give "
                        "another data_dir (--data_dir)") from None  # fmt: skip
    splits = builder.info.splits
    say(
        f"prepared tfds {key} {builder.version} in {builder.data_dir}: "
        f"{splits['train'].num_examples:,} train and {splits['test'].num_examples:,} test "
        f"records from {paths['train_images'].parent} ({time.perf_counter() - started:.0f} s)"
    )
    return Path(builder.data_dir)


def _stage_and_prepare(tfds, key: str, builder, paths: dict[str, Path], root: Path) -> None:
    """``paths`` staged in a fresh download folder under ``root`` as TFDS's downloads, then
    prepared by TFDS (its two lines on stdout kept quiet); the staging folder is removed."""
    from etils import epath
    from tensorflow_datasets.core.download import resource

    by_name = {FILES[role]: path for role, path in paths.items()}
    with tempfile.TemporaryDirectory(prefix=f"fnn-stage-{key}-", dir=root) as staging:
        for url, info in builder.url_infos.items():
            source = by_name[info.filename]
            target = Path(staging, resource.get_dl_fname(url, info.checksum))
            if source.suffix == ".gz":
                shutil.copyfile(source, target)
            else:  # an uncompressed IDX file: TFDS expects the download, gzipped
                with open(source, "rb") as raw, gzip.open(target, "wb") as packed:
                    shutil.copyfileobj(raw, packed)
            resource.write_info_file(url, epath.Path(target), key, info.filename, info)
        config = tfds.download.DownloadConfig(try_download_gcs=False)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                builder.download_and_prepare(download_dir=staging, download_config=config)
        except (OSError, ValueError):
            raise
        except Exception as error:  # tfds raises many kinds; the user needs one line
            raise DataError(f"tfds could not prepare {key} ({_one_line(error)})") from None


def load_tfds(
    key: str, data_dir: str | os.PathLike | None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` pairs of ``key`` from the prepared TFDS copy in ``tfds_dir(data_dir)``
    (in TFDS's order), every split read in one bulk call. Nothing downloads: a missing copy is
    one line saying how to prepare one (TFDS's own download would try the network for
    minutes)."""
    tfds = _tfds(prepare=False)
    root = tfds_dir(data_dir)
    absl = logging.getLogger("absl")  # TFDS says there that it decodes with PIL, not OpenCV
    level = absl.level
    absl.setLevel(max(level, logging.ERROR))
    try:
        return tuple(_read_split(tfds, key, split, root) for split in ("train", "test"))
    finally:
        absl.setLevel(level)


def _read_split(tfds, key: str, split: str, root: Path):
    """``(images, labels)`` of one split of a prepared copy, read in one bulk call."""
    try:
        source = tfds.data_source(
            key, split=split, data_dir=str(root), download=False,
            builder_kwargs={"file_format": "array_record"},
        )  # fmt: skip
        records = source.__getitems__(range(len(source)))  # about 3x faster than list()
    except Exception as error:  # tfds raises many kinds; the user needs one line
        hint = (
            f"prepare it offline with `fnn prepare-tfds {key} --data_dir {root}` "
            f"({INSTALL_PREPARE}), or use source='idx'"
        )
        raise DataError(
            f"no readable tfds copy of {key}/{split} in {root} ({_one_line(error)}); {hint}"
        ) from None
    images = np.stack([record["image"] for record in records]).astype(np.uint8)
    labels = np.asarray([record["label"] for record in records], dtype=np.int64)
    if images.shape[-1] == 1:  # grey images; CIFAR-10 keeps its 3 channels
        images = rearrange(images, "n h w 1 -> n h w")
    return _checked(images, labels, f"tfds {key}/{split}")
