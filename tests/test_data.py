"""Tests for fnn.data: IDX reading, file lookup and download (from a loopback server only),
splits, subsets, minibatches, and the real MNIST / Fashion-MNIST files when present."""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import shutil
import socket
import struct
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_cifar_archive

from fnn import data
from fnn.data import download

# --------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file as in LeCun's spec: 0, 0, type 0x08 (uint8), ndim, big-endian dims, data."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_file(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)
    return path


def write_dataset(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    """The four canonical .gz files in ``folder`` holding small random data; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for role, array in arrays.items():
        write_file(folder / data.FILES[role], idx_bytes(array))
    return arrays


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


class QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str]
    timeout = 10

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch, closed_url) -> SimpleNamespace:
    """No test reads the real cache or /usr/share/datasets, or contacts a real mirror."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(download, "MIRRORS", {key: [closed_url] for key in data.DATASETS})
    monkeypatch.setattr(download, "CIFAR_URL", closed_url + data.CIFAR_ARCHIVE)
    return SimpleNamespace(cache=tmp_path / "xdg-cache" / "fnn", system=tmp_path / "system")


@pytest.fixture
def no_env(monkeypatch) -> None:
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on an ephemeral 127.0.0.1 port serving ``root``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (QuietHandler,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(
            root=root, url=f"http://127.0.0.1:{httpd.server_port}/", requests=handler.requests
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def serve_dataset(server, monkeypatch, mirrors: list[str], key: str = "mnist") -> dict:
    """Write a small data set to ``server.root/mnist/`` and trust its sha256 for ``key``."""
    arrays = write_dataset(server.root / "mnist")
    hashes = {
        name: hashlib.sha256((server.root / "mnist" / name).read_bytes()).hexdigest()
        for name in data.FILES.values()
    }
    monkeypatch.setitem(download.SHA256, key, hashes)
    monkeypatch.setitem(download.MIRRORS, key, mirrors)
    return arrays


# --------------------------------------------------------------------------- real files

REAL = {
    "mnist": ([5, 0, 4, 1, 9, 2, 1, 3, 1, 4], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
    "fashion_mnist": ([9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]),
}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("name", list(REAL))
def test_load_real_files(data_dir, name):
    (x_train, y_train), (x_test, y_test) = data.load(name, data_dir=data_dir, progress=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == y_test.dtype == np.int64
    first_train, first_test = REAL[name]
    assert y_train[:10].tolist() == first_train
    assert y_test[:10].tolist() == first_test
    expected = [6000] * 10 if name == "fashion_mnist" else MNIST_TRAIN_COUNTS
    assert np.bincount(y_train).tolist() == expected
    assert len(data.CLASS_NAMES[name]) == 10


def test_prepare_real_fashion_subset(data_dir):
    splits = data.prepare("fashion_mnist", data_dir=data_dir, train_subset=3000, progress=False)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (2700, 300, 10000)
    assert splits.x_train.shape == (2700, 784) and splits.x_test.shape == (10000, 784)
    for x in (splits.x_train, splits.x_val, splits.x_test):
        assert x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(splits.y_train).tolist() == [270] * 10
    assert np.bincount(splits.y_val).tolist() == [30] * 10
    assert splits.y_test[:10].tolist() == REAL["fashion_mnist"][1]


# --------------------------------------------------------------------------- read_idx


def test_read_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    for suffix in (".gz", ""):
        images_path = write_file(tmp_path / f"images{suffix}", idx_bytes(images))
        labels_path = write_file(tmp_path / f"labels{suffix}", idx_bytes(labels))
        np.testing.assert_array_equal(data.read_idx(images_path), images)
        np.testing.assert_array_equal(data.read_idx(labels_path), labels)
    assert idx_bytes(images)[:4] == bytes.fromhex("00000803")
    assert idx_bytes(labels)[:4] == bytes.fromhex("00000801")


def corrupt_cases() -> dict[str, bytes]:
    good = idx_bytes(np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256)
    return {
        "truncated": good[:-10],
        "extra bytes": good + b"\0\0\0",
        "bad magic": b"\x08\x03" + good[2:],
        "int32 type": good[:2] + b"\x0c" + good[3:],
        "short header": good[:9],
        "empty": b"",
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_read_idx_rejects_corrupt_files(tmp_path, case):
    path = write_file(tmp_path / "train-images-idx3-ubyte.gz", corrupt_cases()[case])
    with pytest.raises(data.DataError) as error:
        data.read_idx(path)
    assert_one_line(error, "train-images-idx3-ubyte.gz", "FNN_DATA_DIR")


@pytest.mark.parametrize("case", ["not gzip", "corrupt deflate", "cut gzip"])
def test_read_idx_rejects_bad_gzip(tmp_path, case):
    packed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)), mtime=0)
    payload = {
        "not gzip": b"<html>404 not found</html>",
        "corrupt deflate": packed[:12] + bytes(b ^ 0xFF for b in packed[12:30]) + packed[30:],
        "cut gzip": packed[: len(packed) // 2],
    }[case]
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(data.DataError) as error:
        data.read_idx(path)
    assert_one_line(error, "t10k-labels-idx1-ubyte.gz")


def test_load_rejects_wrong_dims(tmp_path):
    write_dataset(tmp_path / "mnist")
    bad = np.zeros((30, 28, 27), np.uint8)
    write_file(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", idx_bytes(bad))
    with pytest.raises(data.DataError) as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert_one_line(error, "train-images-idx3-ubyte.gz", "(N, 28, 28)")


def test_load_rejects_label_count_mismatch(tmp_path):
    write_dataset(tmp_path / "mnist")
    write_file(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(9)))
    with pytest.raises(data.DataError) as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert_one_line(error, "t10k-labels-idx1-ubyte.gz", "10 images but 9 labels")


def test_load_rejects_labels_out_of_range(tmp_path):
    write_dataset(tmp_path / "mnist")
    write_file(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(10, 10)))
    with pytest.raises(data.DataError) as error:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert_one_line(error, "t10k-labels-idx1-ubyte.gz", "0..9")


# --------------------------------------------------------------------------- names, sources


def test_load_names_are_case_insensitive(tmp_path):
    arrays = write_dataset(tmp_path / "fashion-mnist")
    for name in ("fashion_mnist", "Fashion_MNIST", "fashion-mnist"):
        (x_train, y_train), _ = data.load(name, data_dir=tmp_path, download=False)
        np.testing.assert_array_equal(x_train, arrays["train_images"])
        np.testing.assert_array_equal(y_train, arrays["train_labels"])


def test_load_rejects_unknown_name_and_source(tmp_path):
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10"):
        data.load("cifar100", data_dir=tmp_path)
    with pytest.raises(ValueError, match="idx, tfds"):
        data.load("mnist", data_dir=tmp_path, source="torchvision")


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow_datasets") is not None,
    reason="tensorflow-datasets is installed",
)
def test_tfds_source_without_tfds_says_how_to_install():
    with pytest.raises(data.DataError) as error:
        data.load("mnist", source="tfds")
    assert_one_line(error, "pip install 'fnn[tfds]'")


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        (x_train, y_train), (x_test, y_test) = data.load("fashion_mnist", source="tfds")
    assert x_train.shape == (8, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (8,) and y_train.dtype == np.int64
    assert x_test.shape == (8, 28, 28) and y_test.dtype == np.int64


# --------------------------------------------------------------------------- lookup order


def test_lookup_order(tmp_path, monkeypatch, sandbox):
    folders = {
        "data_dir": tmp_path / "arg" / "mnist",
        "env": tmp_path / "env" / "mnist",
        "cache": sandbox.cache / "mnist",
        "system": sandbox.system / "mnist",
    }
    sizes = {place: 20 + 10 * i for i, place in enumerate(folders)}
    for place, folder in folders.items():
        write_dataset(folder, n_train=sizes[place])
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "env"))

    def train_size(**kwargs) -> int:
        (x_train, _), _ = data.load("mnist", download=False, **kwargs)
        return len(x_train)

    assert train_size(data_dir=tmp_path / "arg") == sizes["data_dir"]  # the argument beats env
    assert train_size(data_dir=str(folders["data_dir"])) == sizes["data_dir"]  # files directly
    assert train_size() == sizes["env"]
    (folders["env"] / data.FILES["test_labels"]).unlink()  # an incomplete set is skipped
    assert train_size() == sizes["cache"]
    assert train_size(data_dir=tmp_path / "empty") == sizes["cache"]
    shutil.rmtree(folders["cache"])
    assert train_size() == sizes["system"]


def test_lookup_accepts_uncompressed_files(tmp_path, no_env):
    arrays = write_dataset(tmp_path / "gz" / "mnist")
    for name in data.FILES.values():
        raw = gzip.decompress((tmp_path / "gz" / "mnist" / name).read_bytes())
        write_file(tmp_path / "raw" / "mnist" / name.removesuffix(".gz"), raw)
    (x_train, _), (_, y_test) = data.load("mnist", data_dir=tmp_path / "raw", download=False)
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_missing_everywhere_without_download(name, no_env, sandbox, monkeypatch):
    import pooch

    def no_download(*args, **kwargs):
        raise AssertionError("download=False must not download")

    monkeypatch.setattr(pooch, "retrieve", no_download)
    with pytest.raises(data.DataError) as error:
        data.load(name, download=False)
    folder = data.DATASETS[name]
    assert_one_line(
        error, "FNN_DATA_DIR", str(sandbox.cache / folder), f"{folder}/", "switched off"
    )
    apt = "apt-get install dataset-fashion-mnist"
    assert (apt in str(error.value)) == (name == "fashion_mnist")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_missing_everywhere_and_download_fails(name, no_env, sandbox, closed_url):
    with pytest.raises(data.DataError) as error:
        data.load(name, progress=False)
    folder = data.DATASETS[name]
    assert_one_line(
        error,
        "FNN_DATA_DIR",
        str(sandbox.cache / folder),
        f"the download from {closed_url}train-images-idx3-ubyte.gz",
        "Connection refused",
    )
    assert len(str(error.value)) < 800
    if name == "fashion_mnist":
        assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert not any((sandbox.cache / folder).glob("*"))


# --------------------------------------------------------------------------- download


def test_download_into_cache(server, monkeypatch, sandbox, no_env):
    arrays = serve_dataset(server, monkeypatch, [server.url + "mnist/"])
    (x_train, y_train), (x_test, y_test) = data.load("MNIST", progress=False)
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    cached = sorted(path.name for path in (sandbox.cache / "mnist").iterdir())
    assert cached == sorted(data.FILES.values())
    assert len(server.requests) == 4
    data.load("mnist", progress=False)  # the second time comes from the cache
    assert len(server.requests) == 4


def test_download_only_missing_files(server, monkeypatch, sandbox, no_env):
    arrays = serve_dataset(server, monkeypatch, [server.url + "mnist/"])
    (sandbox.cache / "mnist").mkdir(parents=True)
    for role in ("train_images", "test_labels"):
        shutil.copy(server.root / "mnist" / data.FILES[role], sandbox.cache / "mnist")
    (x_train, _), _ = data.load("mnist", progress=False)
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    assert sorted(server.requests) == sorted(
        f"/mnist/{data.FILES[role]}" for role in ("train_labels", "test_images")
    )


def test_download_falls_back_to_second_mirror(server, monkeypatch, sandbox, no_env):
    arrays = serve_dataset(server, monkeypatch, [server.url + "gone/", server.url + "mnist/"])
    _, (x_test, _) = data.load("mnist", progress=False)
    np.testing.assert_array_equal(x_test, arrays["test_images"])
    first = data.FILES["train_images"]
    assert server.requests[:2] == [f"/gone/{first}", f"/mnist/{first}"]
    assert len(server.requests) == 8


def test_download_checksum_mismatch(server, monkeypatch, sandbox, no_env):
    serve_dataset(server, monkeypatch, [server.url + "mnist/"])
    monkeypatch.setitem(download.SHA256["mnist"], "train-labels-idx1-ubyte.gz", "0" * 64)
    with pytest.raises(data.DataError) as error:
        data.load("mnist", progress=False)
    assert_one_line(error, "train-labels-idx1-ubyte.gz", "sha256")
    # pooch deleted the bad file; only the file fetched before it is in the cache
    assert [path.name for path in (sandbox.cache / "mnist").iterdir()] == [
        "train-images-idx3-ubyte.gz"
    ]


# --------------------------------------------------------------------------- preprocess


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_preprocess(dtype):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    x = data.preprocess(images, dtype)
    assert x.shape == (6, 784) and x.dtype == dtype
    assert x[0, 0] == 0.0 and x[0, 1] == 1.0
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x, images.reshape(6, -1) / 255.0, rtol=1e-6)
    assert x[2, 28 * 3 + 5] == dtype(images[2, 3, 5]) / dtype(255)  # row-major flattening


def test_preprocess_validates():
    with pytest.raises(ValueError, match="float"):
        data.preprocess(np.zeros((1, 28, 28), np.uint8), np.int32)
    with pytest.raises(ValueError, match="uint8"):
        data.preprocess(np.zeros((1, 784), np.uint8))


# --------------------------------------------------------------------------- splits


def unbalanced_labels() -> np.ndarray:
    counts = [50, 31, 17, 8, 2, 1]
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(1).permutation(labels)


def test_stratified_split():
    labels = unbalanced_labels()
    train, val = data.stratified_split(labels, 0.2, seed=0)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    total, in_val = np.bincount(labels), np.bincount(labels[val], minlength=6)
    assert np.all(np.abs(in_val - 0.2 * total) <= 1)
    assert in_val[4] == 1  # a class of 2 gives one sample to validation


def test_stratified_split_is_seeded():
    labels = unbalanced_labels()
    first = data.stratified_split(labels, 0.25, seed=3)
    again = data.stratified_split(labels, 0.25, seed=np.random.default_rng(3))
    other = data.stratified_split(labels, 0.25, seed=4)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_stratified_split_rejects_fraction(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        data.stratified_split(np.zeros(10, int), fraction, seed=0)


def test_stratified_subset():
    labels = unbalanced_labels()
    subset = data.stratified_subset(labels, 40, seed=0)
    assert len(subset) == 40 and len(np.unique(subset)) == 40
    assert np.all(np.diff(subset) > 0)
    expected = np.bincount(labels) * 40 / len(labels)
    assert np.all(np.abs(np.bincount(labels[subset], minlength=6) - expected) < 1)
    np.testing.assert_array_equal(subset, data.stratified_subset(labels, 40, seed=0))
    assert not np.array_equal(subset, data.stratified_subset(labels, 40, seed=1))
    np.testing.assert_array_equal(data.stratified_subset(labels, 500, 0), np.arange(len(labels)))
    with pytest.raises(ValueError, match=">= 1"):
        data.stratified_subset(labels, 0, seed=0)


def test_prepare_is_seeded_and_keeps_the_test_set(tmp_path):
    arrays = write_dataset(tmp_path / "mnist", n_train=200, n_test=20)
    kwargs = dict(data_dir=tmp_path, val_fraction=0.2, train_subset=100, download=False)
    first = data.prepare("mnist", seed=0, dtype=np.float64, **kwargs)
    again = data.prepare("mnist", seed=0, dtype=np.float64, **kwargs)
    other = data.prepare("mnist", seed=1, dtype=np.float64, **kwargs)
    assert (len(first.y_train), len(first.y_val)) == (80, 20)
    assert first.x_train.dtype == np.float64 and first.y_train.dtype == np.int64
    for field in data.Splits._fields:
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.y_val, other.y_val) or not np.array_equal(
        first.x_val, other.x_val
    )
    np.testing.assert_array_equal(first.x_test, data.preprocess(arrays["test_images"], np.float64))
    np.testing.assert_array_equal(first.y_test, arrays["test_labels"])
    assert np.bincount(first.y_val).tolist() == [2] * 10
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        data.prepare("mnist", val_fraction=0.0, data_dir=tmp_path)


# --------------------------------------------------------------------------- batches

N = 100


@pytest.mark.parametrize("batch_size", [1, 7, 64, N, N + 5])
def test_batches_cover_every_sample_once(batch_size):
    x = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
    y = np.arange(N)
    rng = np.random.default_rng(0)
    epoch = list(data.batches(x, y, batch_size, rng))
    assert len(epoch) == -(-N // batch_size)
    assert all(len(yb) == batch_size for _, yb in epoch[:-1])
    seen = np.concatenate([yb for _, yb in epoch])
    np.testing.assert_array_equal(np.sort(seen), y)
    for xb, yb in epoch:
        np.testing.assert_array_equal(xb, x[yb])
    next_epoch = np.concatenate([yb for _, yb in data.batches(x, y, batch_size, rng)])
    assert not np.array_equal(seen, next_epoch)
    np.testing.assert_array_equal(x, np.arange(N * 3).reshape(N, 3))  # inputs untouched


def test_batches_are_views_of_one_contiguous_copy():
    x, y = np.zeros((N, 4), np.float32), np.arange(N)
    (x1, y1), (x2, y2), *_ = data.batches(x, y, 16, np.random.default_rng(0))
    assert x1.base is not None and x1.base is x2.base and y1.base is y2.base
    assert x1.base.flags.c_contiguous and not np.shares_memory(x1.base, x)


def test_batches_validate():
    x, y = np.zeros((N, 4)), np.arange(N)
    with pytest.raises(ValueError, match=">= 1"):
        data.batches(x, y, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="same length"):
        data.batches(x, y[:-1], 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="buffer must have"):
        data.batches(x, y, 8, np.random.default_rng(0), buffer=np.zeros((N, 4), np.float32))


def test_batches_into_a_buffer_match_batches_into_a_new_copy():
    x = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
    y = np.arange(N)
    buffer = np.full_like(x, -1)
    fresh = list(data.batches(x, y, 16, np.random.default_rng(5)))
    reused = list(data.batches(x, y, 16, np.random.default_rng(5), buffer=buffer))
    for (xa, ya), (xb, yb) in zip(fresh, reused, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert np.shares_memory(xb, buffer)
    np.testing.assert_array_equal(np.sort(buffer[:, 0]), x[:, 0])  # a permutation of x


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar_archive_is_read_in_the_documented_layout(tmp_path, no_env):
    arrays = write_cifar_archive(tmp_path / "cifar-10" / data.CIFAR_ARCHIVE)
    (x_train, y_train), (x_test, y_test) = data.load("cifar10", data_dir=tmp_path, download=False)
    assert x_train.shape == (100, 32, 32, 3) and x_test.shape == (20, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(x_test, arrays["test_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_cifar_loose_batch_files_are_found(tmp_path, no_env):
    archive = write_cifar_archive(tmp_path / "archive" / data.CIFAR_ARCHIVE)
    with tarfile.open(tmp_path / "archive" / data.CIFAR_ARCHIVE) as opened:
        opened.extractall(tmp_path / "data" / "cifar-10", filter="data")
    (x_train, _), (x_test, y_test) = data.load("cifar10", data_dir=tmp_path / "data")
    np.testing.assert_array_equal(x_train, archive["train_images"])
    np.testing.assert_array_equal(y_test, archive["test_labels"])


def test_cifar_prepare_binary_subset_resized_and_standardised(tmp_path, no_env):
    arrays = write_cifar_archive(tmp_path / "cifar-10" / data.CIFAR_ARCHIVE)
    splits = data.prepare(
        "cifar10",
        data_dir=tmp_path,
        classes=["automobile", "cat"],
        resize=16,
        val_fraction=0.2,
        dtype=np.float64,
        progress=False,
    )
    assert splits.x_train.shape == (16, 16 * 16 * 3) and splits.x_val.shape == (4, 768)
    assert set(splits.y_train) == {0, 1} and set(splits.y_test) == {0, 1}
    # automobile (1) became 0 and cat (3) became 1, in the given order
    expected_test = arrays["test_labels"][np.isin(arrays["test_labels"], [1, 3])]
    np.testing.assert_array_equal(splits.y_test, (expected_test == 3).astype(int))
    pixels = splits.x_train.reshape(-1, 3)  # per channel: mean 0, std 1 on the training split
    np.testing.assert_allclose(pixels.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(pixels.std(axis=0), 1, atol=1e-12)
    # The test images use the training statistics: undo them and compare with area averages.
    raw = arrays["test_images"][np.isin(arrays["test_labels"], [1, 3])].astype(np.float64)
    area = raw.reshape(-1, 16, 2, 16, 2, 3).mean(axis=(2, 4)).reshape(len(raw), -1) / 255
    train_raw = data.preprocess(
        arrays["train_images"][np.isin(arrays["train_labels"], [1, 3])], np.float64, size=16
    )
    assert train_raw.shape[1] == 768
    correlation = np.corrcoef(splits.x_test.ravel(), area.ravel())[0, 1]
    assert correlation > 0.999  # an affine per-channel map of the area averages


def test_preprocess_area_average_and_channels():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    x = data.preprocess(images, np.float64, size=2)
    assert x.shape == (2, 2 * 2 * 3)
    block = images[0, 0:2, 2:4, 1].astype(float).mean() / 255  # top-right pixel, green
    assert x[0, (0 * 2 + 1) * 3 + 1] == pytest.approx(block)
    grey = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    np.testing.assert_allclose(data.preprocess(grey, np.float64, size=1), [[7.5 / 255]])
    with pytest.raises(ValueError, match="divide"):
        data.preprocess(grey, np.float64, size=3)


def test_class_indices_and_names():
    assert data.class_indices("cifar10", ["Automobile", "cat"]) == [1, 3]
    assert data.class_names("cifar10", ["3", "automobile"]) == ["cat", "automobile"]
    assert data.class_names("mnist") == [str(digit) for digit in range(10)]
    for bad, message in ((["car", "cat"], "unknown class"), (["cat"], "at least two"),
                         (["cat", "3"], "twice")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            data.class_indices("cifar10", bad)


def test_cifar_download_checks_the_sha256(server, monkeypatch, sandbox, no_env):
    archive = server.root / data.CIFAR_ARCHIVE
    arrays = write_cifar_archive(archive)
    monkeypatch.setattr(download, "CIFAR_URL", server.url + data.CIFAR_ARCHIVE)
    monkeypatch.setattr(download, "CIFAR_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    (x_train, _), _ = data.load("cifar10", progress=False)
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    assert (sandbox.cache / "cifar-10" / data.CIFAR_ARCHIVE).is_file()
    (sandbox.cache / "cifar-10" / data.CIFAR_ARCHIVE).unlink()
    monkeypatch.setattr(download, "CIFAR_SHA256", "0" * 64)
    with pytest.raises(data.DataError) as error:
        data.load("cifar10", progress=False)
    assert_one_line(error, "does not match its sha256")


def test_cifar_missing_and_unreachable_is_one_line(sandbox, no_env):
    with pytest.raises(data.DataError) as error:
        data.load("cifar10", progress=False)
    assert_one_line(error, "cifar10", "Connection refused", "FNN_DATA_DIR")


def test_cifar_corrupt_archive_is_one_line(tmp_path, no_env):
    folder = tmp_path / "cifar-10"
    folder.mkdir()
    (folder / data.CIFAR_ARCHIVE).write_bytes(b"not a gzip file")
    with pytest.raises(data.DataError) as error:
        data.load("cifar10", data_dir=tmp_path, download=False)
    assert_one_line(error, "not a readable CIFAR-10 archive")
