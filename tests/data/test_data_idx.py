"""fnn.data.idx: reading and checking IDX files, and the one-line error for each way a
file can be wrong."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from data_support import (
    assert_one_line,
    idx_bytes,
    sandbox_fixture,  # noqa: F401 - pytest fixtures
    write_dataset,
    write_file,
)

from fnn import data


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
