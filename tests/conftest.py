"""Shared fixtures: the real data sets when they are on this machine (skip when absent)."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from fnn import data

REPO = Path(__file__).resolve().parent.parent
# Hypothesis keeps no example database in the checkout: tests leave nothing behind.
settings.register_profile("fnn", database=None)
settings.load_profile("fnn")


def pytest_configure(config) -> None:
    """Hypothesis's own files (a cache of the source's constants), the folder torch's compiler
    makes on import, matplotlib's and Keras's go to a temporary folder, removed when the run
    ends, not to ``.hypothesis/`` in the checkout, ``/tmp/torchinductor_$USER`` or HOME."""
    config.hypothesis_home = tempfile.mkdtemp(prefix="fnn-tests-")
    set_hypothesis_home_dir(config.hypothesis_home)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(config.hypothesis_home, "torch"))
    # nor matplotlib's font cache and Keras's settings (TensorFlow writes them on import)
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(config.hypothesis_home, "matplotlib"))
    os.environ.setdefault("KERAS_HOME", os.path.join(config.hypothesis_home, "keras"))
    # and numba's compiled loops (shared by the run's subprocesses, which inherit it)
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(config.hypothesis_home, "numba"))
    # Updates run on NumPy's path unless a test asks for both (``update_path``, tests/test_fused):
    # every process that runs a fused update first spends about a second importing numba and
    # loading its loop, which the command-line tests would pay a hundred times over.
    os.environ.setdefault("FNN_FUSED", "0")


def pytest_unconfigure(config) -> None:
    shutil.rmtree(getattr(config, "hypothesis_home", ""), ignore_errors=True)


@pytest.fixture(scope="module", params=["numpy", "fused"])
def update_path(request):
    """Run a module's tests on each path of the optimizers' updates: NumPy's passes
    (``FNN_FUSED=0``) and numba's compiled loops (skipped, in one line, without numba). The
    variable is read when an optimizer is made, in this process or a subprocess."""
    if request.param == "fused" and importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed: pip install 'fnn[fast]'")
    saved = os.environ.get("FNN_FUSED")
    os.environ["FNN_FUSED"] = "0" if request.param == "numpy" else "1"
    yield request.param
    if saved is None:
        os.environ.pop("FNN_FUSED", None)
    else:
        os.environ["FNN_FUSED"] = saved


@pytest.fixture
def compiled_calls(monkeypatch) -> list[tuple[str, bool]]:
    """``(loop name, apply)`` for each call of a compiled loop, in order, by the optimizers
    made during the test (each compiles its loop at its first update, through
    ``fnn.fused.compiled``, which this wraps)."""
    from fnn import fused

    calls, compiled = [], fused.compiled

    def spy(loop):
        kernel = compiled(loop)
        if kernel is None:
            return None

        def recorded(g, params, decay, apply, *rest):
            calls.append((loop.__name__, bool(apply)))
            return kernel(g, params, decay, apply, *rest)

        return recorded

    monkeypatch.setattr(fused, "compiled", spy)
    return calls


def real_data_dir() -> Path | None:
    """``$FNN_DATA_DIR`` or ``../shared/datasets`` beside the checkout, if it holds the files."""
    candidates = [os.environ.get("FNN_DATA_DIR"), REPO.parent / "shared" / "datasets"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture
def data_dir() -> Path:
    found = real_data_dir()
    if found is None:
        pytest.skip("real MNIST/Fashion-MNIST files not found (set FNN_DATA_DIR)")
    return found


def cifar_records(labels: np.ndarray, seed: int) -> tuple[bytes, np.ndarray]:
    """CIFAR-10 binary records for ``labels`` and the HWC images they hold."""
    images = np.random.default_rng(seed).integers(0, 256, (len(labels), 32, 32, 3), np.uint8)
    channel_major = images.transpose(0, 3, 1, 2).reshape(len(labels), -1)
    records = np.concatenate([labels[:, None].astype(np.uint8), channel_major], axis=1)
    return records.tobytes(), images


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_same_tree(a, b) -> None:
    """Exact equality of two (NamedTuple / dict / list / array / number / Layout) trees:
    types, structure, dtypes and every value, walked independently of fnn.tree."""
    from fnn.tree import Layout

    assert type(a) is type(b)
    if isinstance(a, Layout):  # a description (a NamedTuple of static data), not a container
        assert a == b
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tree(a[key], b[key])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    else:
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)


def assert_png(path: Path, min_height: int = 200, min_width: int = 300) -> None:
    """``path`` is a PNG of at least that size with something drawn on it."""
    import matplotlib.image

    assert path.exists()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert pixels.shape[0] >= min_height and pixels.shape[1] >= min_width
    assert pixels.std() > 0  # something was drawn


def write_cifar_archive(path: Path, per_batch: int = 20) -> dict:
    """A ``cifar-10-binary.tar.gz`` in the real layout: five train batches and a test batch of
    ``per_batch`` records each, labels cycling through the ten classes."""
    labels = np.arange(per_batch) % 10
    train_images, test_images = [], None
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        names = [*data.CIFAR_TRAIN, data.CIFAR_TEST]
        for index, name in enumerate(names):
            payload, images = cifar_records(labels, seed=index)
            if name == data.CIFAR_TEST:
                test_images = images
            else:
                train_images.append(images)
            info = tarfile.TarInfo(f"{data.CIFAR_FOLDER}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        meta = "\n".join(data.CLASS_NAMES["cifar10"]).encode()
        info = tarfile.TarInfo(f"{data.CIFAR_FOLDER}/batches.meta.txt")
        info.size = len(meta)
        archive.addfile(info, io.BytesIO(meta))
    return {
        "train_images": np.concatenate(train_images),
        "train_labels": np.tile(labels, 5),
        "test_images": test_images,
        "test_labels": labels,
    }


@pytest.fixture
def cifar_dir(tmp_path) -> Path:
    """A folder holding ``cifar-10/cifar-10-binary.tar.gz`` with 100 + 20 small records."""
    write_cifar_archive(tmp_path / "cifar-data" / "cifar-10" / data.CIFAR_ARCHIVE)
    return tmp_path / "cifar-data"


@pytest.fixture(autouse=True)
def _quiet_wandb(tmp_path, monkeypatch):
    """No test tracks to W&B unless it asks to, and none writes runs into the checkout."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    # An in-process W&B run records its service here; a child that inherits it would hand its
    # runs to this process's service, which then holds the child's files open after it ends.
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B as a user without an account sees it: no key, no WANDB_MODE; runs land in tmp."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / ".config" / "wandb"))
    from fnn import tracking

    monkeypatch.setattr(tracking, "_announced", [])  # each test sees the offline notice
    return tmp_path
