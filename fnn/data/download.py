"""Where the data files are looked for, and how missing ones are downloaded into fnn's cache.

The folders, in order: ``data_dir`` (or ``$FNN_DATA_DIR``), ``cache_dir()``, ``SYSTEM_DIR``.
Downloads go through pooch (imported only when a download starts) and must match the
canonical sha256: MNIST and Fashion-MNIST from ``MIRRORS``, tried in order; CIFAR-10 from
``CIFAR_URL``. These settings are read here at call time, so a test patches them here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fnn.data.catalog import DataError, _one_line

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

# Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist/*.gz.
SYSTEM_DIR = Path("/usr/share/datasets")


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime) checked in this process


def check_cached(key: str, path: Path) -> None:
    """``DataError`` when a file of fnn's download cache no longer has its canonical SHA-256
    (damaged or altered since the download); each file is hashed once per process."""
    expected = SHA256.get(key, {}).get(path.name)
    status = path.stat()
    stamp = (str(path), status.st_size, status.st_mtime_ns)
    if expected is None or stamp in _VERIFIED:
        return
    with open(path, "rb") as file:
        found = sha256_of(file)
    if found != expected:
        raise DataError(
            f"{path}: its SHA-256 is not the canonical file's (damaged or altered since it was "
            "downloaded); delete it and fnn downloads it again"
        )
    _VERIFIED.add(stamp)


def cache_dir() -> Path:
    """fnn's download cache: ``$XDG_CACHE_HOME/fnn`` (default ``~/.cache/fnn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "fnn"


def _search_dirs(folder: str, data_dir: str | os.PathLike | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root / folder, root]
    elif os.environ.get("FNN_DATA_DIR"):
        dirs.append(Path(os.environ["FNN_DATA_DIR"]).expanduser() / folder)
    return [*dirs, cache_dir() / folder, SYSTEM_DIR / folder]


def _progressbar(progress: bool) -> bool:
    # pooch refuses progressbar=True without tqdm; a missing bar is no reason to fail.
    return progress and importlib.util.find_spec("tqdm") is not None


def _missing_folders(target: Path) -> list[Path]:
    """``target`` and those of its parents that do not exist yet, the outermost first."""
    missing = [folder for folder in (target, *target.parents) if not folder.exists()]
    return missing[::-1]


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the ``folders`` a failed download created, innermost first, if still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def _tidy_on_failure(failed: Callable[[Any], bool]) -> Callable[[Callable], Callable]:
    """A download function (with a ``target`` folder) that leaves no empty folder behind when
    it fails, by raising or by returning a result ``failed`` says is a failure: it removes
    those of ``target``'s folders it created."""

    def decorate(download: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(download)

        @functools.wraps(download)
        def tidy(*args: Any, **kwargs: Any) -> Any:
            target = signature.bind(*args, **kwargs).arguments["target"]
            created = _missing_folders(Path(target))
            try:
                result = download(*args, **kwargs)
            except BaseException:
                _remove_if_empty(created)
                raise
            if failed(result):
                _remove_if_empty(created)
            return result

        return tidy

    return decorate


def sha256_of(stream) -> str:
    """The SHA-256 of what the binary ``stream`` reads, in 1 MB blocks."""
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


@_tidy_on_failure(failed=lambda reason: reason is not None)
def _download_idx(
    key: str, filenames: Iterable[str], target: Path, *, progress: bool
) -> str | None:
    """Fetch the ``filenames`` missing from ``target``; None on success, else why it failed.
    A checksum mismatch on every mirror is a ``DataError`` (pooch deletes the bad file)."""
    try:
        import pooch
    except ImportError:
        return "downloading needs pooch (pip install pooch)"
    progressbar = _progressbar(progress)
    for filename in filenames:
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


@_tidy_on_failure(failed=lambda result: result[0] is None)
def _download_cifar(target: Path, *, progress: bool) -> tuple[Path | None, str]:
    """Fetch ``CIFAR_URL`` into ``target``: ``(the archive, "")`` on success, else ``(None, why
    it failed)``. A checksum mismatch is a ``DataError`` (pooch deletes the bad file)."""
    try:
        import pooch

        archive = pooch.retrieve(
            CIFAR_URL,
            known_hash=f"sha256:{CIFAR_SHA256}",
            fname=CIFAR_ARCHIVE,
            path=target,
            progressbar=_progressbar(progress),
        )
    except ImportError:
        return None, "downloading needs pooch (pip install pooch)"
    except ValueError as error:
        if "hash" not in str(error):
            raise
        raise DataError(
            f"{CIFAR_URL} does not match its sha256 {CIFAR_SHA256} (the file was deleted); "
            "try again later or provide the archive yourself (see FNN_DATA_DIR)"
        ) from None
    except OSError as error:
        return None, f"the download from {CIFAR_URL} failed ({_one_line(error)})"
    return Path(archive), ""
