"""fnn.data.download: the folders looked in, in order, and downloads into the cache from a
loopback server only (mirrors in turn, only the missing files, sha256 checks)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest
from data_support import (  # noqa: F401 - pytest fixtures
    assert_one_line,
    no_env_fixture,
    sandbox_fixture,
    serve_dataset,
    server_fixture,
    write_dataset,
    write_file,
)

from fnn import data
from fnn.data import download


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
    monkeypatch.setattr(
        download,
        "SHA256",
        {
            "mnist": {  # the cached copies count as canonical
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folders["cache"].iterdir()
            }
        },
    )

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
def test_missing_everywhere_and_download_fails(name, no_env, sandbox):
    with pytest.raises(data.DataError) as error:
        data.load(name, progress=False)
    folder = data.DATASETS[name]
    assert_one_line(
        error,
        "FNN_DATA_DIR",
        str(sandbox.cache / folder),
        f"the download from {sandbox.closed_url}train-images-idx3-ubyte.gz",
        "Connection refused",
    )
    assert len(str(error.value)) < 800
    if name == "fashion_mnist":
        assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert not any((sandbox.cache / folder).glob("*"))


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


def test_a_cached_file_altered_since_its_download_is_refused(monkeypatch, sandbox, no_env):
    folder = sandbox.cache / "mnist"
    write_dataset(folder)
    canonical = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    monkeypatch.setattr(download, "SHA256", {"mnist": canonical})
    assert len(data.load("mnist", download=False)[0][0]) == 30
    labels = folder / data.FILES["train_labels"]
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # still a well-formed file, with one label changed
    labels.write_bytes(gzip.compress(bytes(raw)))
    os.utime(labels, ns=(1, 1))  # (a later change, whatever the clock's resolution)
    with pytest.raises(data.DataError) as error:
        data.load("mnist", download=False)
    assert_one_line(error, str(labels), "SHA-256", "delete it and fnn downloads it again")
