"""fnn.plots.samples: the first sample of each class, as a mosaic and as a labelled grid."""

import numpy as np
import pytest
from conftest import assert_png

from fnn.plots import first_of_each_class, sample_grid, sample_grid_array

NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
RNG = np.random.default_rng(0)


def test_first_of_each_class():
    labels = np.array([2, 0, 2, 1, 0, 3, 1])
    np.testing.assert_array_equal(first_of_each_class(labels, 4), [1, 3, 0, 5])
    np.testing.assert_array_equal(first_of_each_class(labels, 2), [1, 3])


def test_first_of_each_class_names_missing_classes():
    with pytest.raises(ValueError, match="class 1, 4"):
        first_of_each_class(np.array([0, 2, 3, 0]), 5)


def tagged_images(labels):
    """uint8 (N, 28, 28) images whose pixels all equal 10 * class + (position of the sample)."""
    images = np.empty((len(labels), 28, 28), dtype=np.uint8)
    images[:] = (10 * labels + np.arange(len(labels)) % 10)[:, None, None]
    return images


def test_sample_grid_array_picks_the_first_of_each_class():
    labels = np.array([3, 1, 0, 2, 1, 3, 4, 6, 5, 0, 7])
    images = tagged_images(labels)
    mosaic = sample_grid_array(images, labels, 7)
    assert mosaic.dtype == np.uint8
    assert mosaic.shape == (2 * 30 + 2, 5 * 30 + 2)  # 2 rows x 5 columns of 28 + 2-pixel borders
    first = first_of_each_class(labels, 7)
    for c in range(7):
        top, left = 2 + (c // 5) * 30, 2 + (c % 5) * 30
        assert np.all(mosaic[top : top + 28, left : left + 28] == images[first[c]])
    assert np.all(mosaic[0] == 255) and np.all(mosaic[:, 30:32] == 255)  # borders


def test_sample_grid_array_accepts_flat_float_images():
    labels = np.arange(20) % 10
    images = RNG.random((20, 784))
    mosaic = sample_grid_array(images, labels, 10)
    assert mosaic.shape == (62, 152) and mosaic.dtype == np.uint8
    np.testing.assert_array_equal(
        mosaic[2:30, 2:30], np.round(images[0].reshape(28, 28) * 255).astype(np.uint8)
    )


def test_sample_grid_writes_a_png(tmp_path):
    labels = RNG.permutation(np.arange(30) % 10)
    path = sample_grid(tagged_images(labels), labels, NAMES, tmp_path / "a" / "grid.png", title="t")
    assert path == tmp_path / "a" / "grid.png"
    assert_png(path, 200, 500)
    path = sample_grid(RNG.random((30, 784)), labels, NAMES[:7], tmp_path / "grid7.png")
    assert_png(path, 200, 500)


def test_sample_grid_missing_class(tmp_path):
    labels = np.arange(30) % 9
    with pytest.raises(ValueError, match="class 9"):
        sample_grid(tagged_images(labels), labels, NAMES, tmp_path / "grid.png")
    assert not (tmp_path / "grid.png").exists()
