"""fnn.data.splits: stratified splits and subsets, class selection, prepare and the
minibatches of an epoch."""

from __future__ import annotations

import numpy as np
import pytest
from data_support import (
    sandbox_fixture,  # noqa: F401 - pytest fixtures
    write_dataset,
)

from fnn import data


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


def test_class_indices_and_names():
    assert data.class_indices("cifar10", ["Automobile", "cat"]) == [1, 3]
    assert data.class_names("cifar10", ["3", "automobile"]) == ["cat", "automobile"]
    assert data.class_names("mnist") == [str(digit) for digit in range(10)]
    for bad, message in ((["car", "cat"], "unknown class"), (["cat"], "at least two"),
                         (["cat", "3"], "twice")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            data.class_indices("cifar10", bad)


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
