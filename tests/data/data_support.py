"""What the fnn.data tests share: small IDX files written on the fly, a sandbox that keeps
every test off the real cache, /usr/share/datasets and real mirrors, and a static HTTP server
on 127.0.0.1 to download from. Each test module declares the fixtures it uses on top of these
(a second conftest.py would shadow ``from conftest import ...``)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fnn import data
from fnn.data import download


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


def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """No test reads the real cache or /usr/share/datasets, or contacts a real mirror: every
    download URL is ``closed_url``. Gives the ``cache`` and ``system`` folders and that URL."""
    url = closed_url()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(download, "MIRRORS", {key: [url] for key in data.DATASETS})
    monkeypatch.setattr(download, "CIFAR_URL", url + data.CIFAR_ARCHIVE)
    return SimpleNamespace(
        cache=tmp_path / "xdg-cache" / "fnn", system=tmp_path / "system", closed_url=url
    )


class QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str]
    timeout = 10

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(root: Path) -> Iterator[SimpleNamespace]:
    """A static HTTP server on an ephemeral 127.0.0.1 port serving ``root`` (created), with the
    paths it was asked for in ``requests``."""
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


# The fixtures every data test module shares; a module imports the ones it uses.
@pytest.fixture(autouse=True, name="sandbox")
def sandbox_fixture(tmp_path, monkeypatch) -> SimpleNamespace:
    return sandbox(tmp_path, monkeypatch)


@pytest.fixture(name="no_env")
def no_env_fixture(monkeypatch) -> None:
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)


@pytest.fixture(name="server")
def server_fixture(tmp_path):
    with serving(tmp_path / "www") as served:
        yield served
