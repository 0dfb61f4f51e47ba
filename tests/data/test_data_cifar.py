"""fnn.data.cifar: CIFAR-10's binary archive or its loose batch files, its download, and
prepare on it (classes, resize, per-channel standardisation)."""

from __future__ import annotations

import hashlib
import tarfile

import numpy as np
import pytest
from conftest import write_cifar_archive
from data_support import assert_one_line, no_env_fixture, sandbox_fixture, server_fixture  # noqa: F401 - pytest fixtures

from fnn import data
from fnn.data import download


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
