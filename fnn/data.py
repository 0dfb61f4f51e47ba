"""MNIST, Fashion-MNIST and CIFAR-10: find (or download) the canonical files, read them, and
turn them into seeded, stratified train/validation/test splits of flat float arrays plus
minibatches.

IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero
bytes, a type byte (0x08 = uint8) and a dimension count d, then d uint32 sizes, then the data
row-major. Images are magic 0x00000803 with N, 28, 28; labels are 0x00000801 with N.

CIFAR-10 binary version (Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html): the archive
``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and
``test_batch.bin``, each 10,000 records of 3,073 bytes: the label (0-9), then the 32x32 image
as 1,024 red, 1,024 green and 1,024 blue bytes, rows top to bottom.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from einops import rearrange

from fnn.registry import lookup

DATASETS: dict[str, str] = {
    "mnist": "mnist",
    "fashion_mnist": "fashion-mnist",
    "cifar10": "cifar-10",
}

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
}

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# Tried in order: pooch has no mirror fallback (fatiando/pooch#310). yann.lecun.com is gone.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion_mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

# sha256 of the canonical .gz downloads (tfds url_checksums/{mnist,fashion_mnist}.txt).
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
}

# CIFAR-10's binary version (tfds url_checksums/cifar10.txt: 170,052,171 bytes; the page's md5
# c32a1d4ab5d03f1284b67883e8d87530).
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_TRAIN = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_SHAPE = (3, 32, 32)  # channel-major on disk
CIFAR_RECORD = 1 + 3 * 32 * 32

# Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist/*.gz.
SYSTEM_DIR = Path("/usr/share/datasets")

IDX_UINT8 = 0x08
IMAGE_SHAPE = (28, 28)
IMAGE_SIDE = {"mnist": 28, "fashion_mnist": 28, "cifar10": 32}
NUM_CLASSES = 10
SOURCES = ("idx", "tfds")

_FIX = "delete it and run again to download a fresh copy, or point FNN_DATA_DIR at a good copy"


class DataError(Exception):
    """The data could not be found, downloaded or read; the message is one line for the user."""


class Splits(NamedTuple):
    """Preprocessed splits: ``x_*`` float ``(N, features)`` (MNIST-like: pixels in [0, 1];
    CIFAR-10: standardised per channel), ``y_*`` int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def cache_dir() -> Path:
    """fnn's download cache: ``$XDG_CACHE_HOME/fnn`` (default ``~/.cache/fnn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "fnn"


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
        paths = _find_or_download(key, data_dir, download=download, progress=progress)
        train = _read_pair(paths["train_images"], paths["train_labels"])
        test = _read_pair(paths["test_images"], paths["test_labels"])
    return train, test


def _dataset_key(name: str) -> str:
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    lookup(DATASETS, key, "dataset")
    return key


def _search_dirs(folder: str, data_dir: str | os.PathLike | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root / folder, root]
    elif os.environ.get("FNN_DATA_DIR"):
        dirs.append(Path(os.environ["FNN_DATA_DIR"]).expanduser() / folder)
    return [*dirs, cache_dir() / folder, SYSTEM_DIR / folder]


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


def _find_or_download(
    key: str, data_dir: str | os.PathLike | None, *, download: bool, progress: bool
) -> dict[str, Path]:
    folder = DATASETS[key]
    searched = _search_dirs(folder, data_dir)
    for directory in searched:
        paths = _complete_set(directory)
        if paths is not None:
            return paths
    target = cache_dir() / folder
    if not download:
        reason = "downloading is switched off"
    else:
        failure = _download(key, target, progress=progress)
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


def _download(key: str, target: Path, *, progress: bool) -> str | None:
    """Fetch the files missing from ``target``; None on success, else why it failed.
    A checksum mismatch on every mirror is a ``DataError`` (pooch deletes the bad file)."""
    try:
        import pooch
    except ImportError:
        return "downloading needs pooch (pip install pooch)"
    # pooch refuses progressbar=True without tqdm; a missing bar is no reason to fail.
    progressbar = progress and importlib.util.find_spec("tqdm") is not None
    for filename in FILES.values():
        if (target / filename).is_file():
            continue
        failures, mismatch = [], None
        for mirror in MIRRORS[key]:
            try:
                pooch.retrieve(
                    mirror + filename,
                    known_hash=f"sha256:{SHA256[key][filename]}",
                    fname=filename,
                    path=target,
                    progressbar=progressbar,
                )
                break
            except ValueError as error:
                if "hash" not in str(error):
                    raise
                mismatch = mirror + filename
            except OSError as error:  # requests' ConnectionError, HTTPError, ... and disk errors
                failures.append(f"{mirror + filename} ({_one_line(error)})")
        else:
            if mismatch is not None:
                raise DataError(
                    f"{filename} downloaded from {mismatch} does not match its sha256 "
                    f"{SHA256[key][filename]} (the file was deleted); try again later or "
                    "provide the files yourself (see FNN_DATA_DIR)"
                )
            if not failures:
                return f"no download mirror is configured for {key} (MIRRORS)"
            return "the download from " + ", then ".join(failures) + " failed"
    return None


def _load_cifar(
    data_dir: str | os.PathLike | None, *, download: bool, progress: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    searched = _search_dirs(DATASETS["cifar10"], data_dir)
    for directory in searched:
        for folder in (directory / CIFAR_FOLDER, directory):
            if all((folder / name).is_file() for name in (*CIFAR_TRAIN, CIFAR_TEST)):
                return (
                    _cifar_batches([(folder / name).read_bytes() for name in CIFAR_TRAIN], folder),
                    _cifar_batches([(folder / CIFAR_TEST).read_bytes()], folder),
                )
        if (directory / CIFAR_ARCHIVE).is_file():
            return read_cifar_archive(directory / CIFAR_ARCHIVE)
    target = cache_dir() / DATASETS["cifar10"]
    reason = "downloading is switched off"
    if download:
        try:
            import pooch

            archive = pooch.retrieve(
                CIFAR_URL,
                known_hash=f"sha256:{CIFAR_SHA256}",
                fname=CIFAR_ARCHIVE,
                path=target,
                progressbar=progress and importlib.util.find_spec("tqdm") is not None,
            )
            return read_cifar_archive(Path(archive))
        except ImportError:
            reason = "downloading needs pooch (pip install pooch)"
        except ValueError as error:
            if "hash" not in str(error):
                raise
            raise DataError(
                f"{CIFAR_URL} does not match its sha256 {CIFAR_SHA256} (the file was deleted); "
                "try again later or provide the archive yourself (see FNN_DATA_DIR)"
            ) from None
        except OSError as error:
            reason = f"the download from {CIFAR_URL} failed ({_one_line(error)})"
    places = ", ".join(str(directory) for directory in dict.fromkeys(searched))
    raise DataError(
        f"cifar10: neither {CIFAR_ARCHIVE} nor its six .bin files are in {places} and {reason}. "
        f"Download {CIFAR_URL} (170 MB) into {target}, or set FNN_DATA_DIR (or --data_dir) "
        "to a folder holding cifar-10/ with it."
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


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_path} holds shape {images.shape}, not (N, 28, 28); {_FIX}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds shape {labels.shape}, not (N,); {_FIX}")
    return _checked(images, labels.astype(np.int64), f"{images_path} and {labels_path}")


def _checked(images: np.ndarray, labels: np.ndarray, origin: str) -> tuple[np.ndarray, np.ndarray]:
    if len(images) != len(labels):
        raise DataError(f"{origin} disagree: {len(images)} images but {len(labels)} labels; {_FIX}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(
            f"{origin}: labels range over {labels.min()}..{labels.max()}, not 0..9; {_FIX}"
        )
    return images, labels


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


def _one_line(error: BaseException, limit: int = 200) -> str:
    name = type(error).__name__
    if name == "error":  # zlib.error
        name = f"{type(error).__module__}.error"
    text = " ".join(str(error).split())
    # requests nests urllib3's story; the OS error ("[Errno 111] Connection refused") is the news.
    os_error = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    text = os_error.group().strip() if os_error else text.split(" for url: ")[0]
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{name}: {text}" if text else name


def preprocess(images: np.ndarray, dtype=np.float32, *, size: int | None = None) -> np.ndarray:
    """uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` -> flat ``(N, H*W*C)`` rows of ``dtype``
    in [0, 1] (x / 255), pixel-major with the channels innermost. With ``size`` the images are
    first shrunk to ``size x size`` by area averaging: each output pixel is the mean of one
    ``H/size x W/size`` block (``size`` must divide H and W)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dtype}")
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise ValueError(
            "images must be uint8 of shape (N, height, width) or (N, height, width, channels), "
            f"got {images.dtype} {images.shape}"
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    height, width = images.shape[1:3]
    if size is not None:
        if not (isinstance(size, int) and size >= 1 and height % size == 0 and width % size == 0):
            raise ValueError(f"size must divide the image sides {height} and {width}; got {size}")
        blocks = rearrange(images, "n (h a) (w b) c -> n h w c (a b)", h=size, w=size).astype(
            np.float64
        )
        flat = rearrange(blocks.mean(axis=-1), "n h w c -> n (h w c)").astype(dtype)
    else:
        flat = rearrange(images, "n h w c -> n (h w c)").astype(dtype)
    flat /= dtype.type(255)
    return flat


def standardise(x_train: np.ndarray, *others: np.ndarray, channels: int) -> tuple[np.ndarray, ...]:
    """Per-channel standardisation with the mean and standard deviation of ``x_train`` (flat
    rows, channels innermost), applied to ``x_train`` and every array of ``others``."""
    pixels = x_train.reshape(-1, channels).astype(np.float64)
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    std[std == 0] = 1.0
    scale = np.tile(1.0 / std, x_train.shape[1] // channels).astype(x_train.dtype)
    shift = np.tile(mean, x_train.shape[1] // channels).astype(x_train.dtype)
    return tuple((x - shift) * scale for x in (x_train, *others))


def class_indices(name: str, classes: Sequence[str] | None) -> list[int]:
    """The class indices of ``classes`` (names, case-insensitive, or index numbers) in
    ``name``'s class list; all classes when None. ``ValueError`` for an unknown one."""
    names = CLASS_NAMES[_dataset_key(name)]
    if classes is None:
        return list(range(len(names)))
    lowered = [known.lower() for known in names]
    chosen = []
    for item in classes:
        text = str(item).strip().lower()
        if text.isdigit() and int(text) < len(names):
            index = int(text)
        elif text in lowered:
            index = lowered.index(text)
        else:
            raise ValueError(f"unknown class {item!r} of {name}; valid: {', '.join(names)}")
        if index in chosen:
            raise ValueError(f"class {names[index]!r} is given twice")
        chosen.append(index)
    if len(chosen) < 2:
        raise ValueError(f"choose at least two classes of {name}; got {len(chosen)}")
    return chosen


def class_names(name: str, classes: Sequence[str] | None = None) -> list[str]:
    """The names of ``name``'s classes as the model numbers them (a ``classes`` subset in its
    given order)."""
    names = CLASS_NAMES[_dataset_key(name)]
    return [names[index] for index in class_indices(name, classes)]


def _keep_classes(images, labels, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Only the samples of ``chosen`` classes, relabelled 0..k-1 in ``chosen``'s order."""
    mapping = np.full(NUM_CLASSES, -1, dtype=np.int64)
    mapping[chosen] = np.arange(len(chosen))
    new = mapping[labels]
    keep = new >= 0
    return images[keep], new[keep]


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {labels.shape}")
    return labels


def _sample_per_class(labels: np.ndarray, counts: dict, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices: ``counts[c]`` samples of each class ``c``, drawn without replacement."""
    chosen = [
        rng.choice(np.flatnonzero(labels == cls), size=count, replace=False)
        for cls, count in counts.items()
    ]
    return np.sort(np.concatenate([np.empty(0, np.intp), *chosen]))


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, val_indices)``, each sorted: a seeded random ``round(fraction * n_c)``
    of each class c goes to validation (at least 1, and at most n_c - 1, when n_c >= 2)."""
    labels = _check_labels(labels)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    classes, sizes = np.unique(labels, return_counts=True)
    val_counts = {}
    for cls, size in zip(classes.tolist(), sizes.tolist(), strict=True):
        count = round(fraction * size)
        val_counts[cls] = min(max(count, 1), size - 1) if size >= 2 else count
    val = _sample_per_class(labels, val_counts, np.random.default_rng(seed))
    in_val = np.zeros(len(labels), bool)
    in_val[val] = True
    return np.flatnonzero(~in_val), val


def stratified_subset(labels: np.ndarray, size: int, seed: int | np.random.Generator) -> np.ndarray:
    """Sorted indices of a seeded random subset of exactly ``size`` samples with the class
    proportions of ``labels`` (largest-remainder rounding); all indices if ``size >= N``."""
    labels = _check_labels(labels)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if size >= len(labels):
        return np.arange(len(labels))
    classes, sizes = np.unique(labels, return_counts=True)
    quotas = sizes * size / len(labels)
    counts = np.floor(quotas).astype(int)
    largest_remainders = np.argsort(-(quotas - counts), kind="stable")
    counts[largest_remainders[: size - counts.sum()]] += 1
    per_class = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    return _sample_per_class(labels, per_class, np.random.default_rng(seed))


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    buffer: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``(x_batch, y_batch)`` in a random order drawn from ``rng``: every sample
    once, the last batch partial. The batches are views of one shuffled copy of ``x``, written
    into ``buffer`` (an array like ``x``) when given: a training loop passes the same buffer
    every epoch, once the previous epoch's batches are no longer needed."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if buffer is not None and (buffer.shape != x.shape or buffer.dtype != x.dtype):
        raise ValueError(
            f"buffer must have x's shape {x.shape} and dtype {x.dtype}, got {buffer.shape} "
            f"and {buffer.dtype}"
        )
    order = rng.permutation(len(x))
    # One gather per epoch: slicing it is free, unlike a fancy-index gather per batch. Into a
    # reused buffer it also skips the page faults of a fresh allocation of the whole training
    # set, which cost from 0.05 s to 0.5 s per epoch (Fashion-MNIST, float32) on one machine.
    # mode="clip" (order is in range anyway) lets np.take write into ``buffer`` directly.
    xs = x[order] if buffer is None else np.take(x, order, axis=0, out=buffer, mode="clip")
    ys = y[order]
    return ((xs[i : i + batch_size], ys[i : i + batch_size]) for i in range(0, len(xs), batch_size))


def prepare(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    train_subset: int | None = None,
    seed: int = 0,
    dtype=np.float32,
    source: str = "idx",
    download: bool = True,
    progress: bool = True,
    classes: Sequence[str] | None = None,
    resize: int | None = None,
) -> Splits:
    """Load ``name``, optionally keep only ``classes`` (relabelled 0..k-1 in that order) and a
    stratified ``train_subset`` of the training set, hold out a stratified ``val_fraction`` of
    it for validation, and preprocess all three splits (``resize``: area averaging to that
    side). CIFAR-10 is then standardised per channel with the training split's statistics.
    The test set is the standard one (of the kept classes). Same ``seed``, same subset and
    split."""
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dtype}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if train_subset is not None and train_subset < 1:
        raise ValueError(f"train_subset must be >= 1 (or None for all), got {train_subset}")
    chosen = class_indices(name, classes)
    (x_train, y_train), (x_test, y_test) = load(
        name, data_dir=data_dir, source=source, download=download, progress=progress
    )
    if classes is not None:
        x_train, y_train = _keep_classes(x_train, y_train, chosen)
        x_test, y_test = _keep_classes(x_test, y_test, chosen)
    subset_rng, split_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    if train_subset is not None:
        keep = stratified_subset(y_train, train_subset, subset_rng)
        x_train, y_train = x_train[keep], y_train[keep]
    train, val = stratified_split(y_train, val_fraction, split_rng)
    xs = [preprocess(x, dtype, size=resize) for x in (x_train[train], x_train[val], x_test)]
    if _dataset_key(name) == "cifar10":
        xs = standardise(*xs, channels=x_train.shape[-1])
    return Splits(xs[0], y_train[train], xs[1], y_train[val], xs[2], y_test)
