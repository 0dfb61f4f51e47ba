"""fnn.data.load: data set names, sources, and tensorflow-datasets."""

from __future__ import annotations

import numpy as np
import pytest
from data_support import (
    sandbox_fixture,  # noqa: F401 - pytest fixtures
    write_dataset,
)

from fnn import data


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


def test_tfds_source_with_mock_data(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.data_sources import array_record

    # tfds.testing.mock_data's sources have no working bulk read: read them record by record
    monkeypatch.setattr(array_record.ArrayRecordDataSource, "__getitems__",
                        lambda source, keys: [source[key] for key in keys])  # fmt: skip
    with tfds.testing.mock_data(num_examples=8):
        (x_train, y_train), (x_test, y_test) = data.load("fashion_mnist", source="tfds")
    assert x_train.shape == (8, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (8,) and y_train.dtype == np.int64
    assert x_test.shape == (8, 28, 28) and y_test.dtype == np.int64
