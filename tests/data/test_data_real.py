"""fnn.data on the real MNIST and Fashion-MNIST files, when they are on this machine."""

from __future__ import annotations

import numpy as np
import pytest
from data_support import sandbox_fixture  # noqa: F401 - pytest fixtures

from fnn import data

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
