"""fnn.data.pixels: uint8 images to flat float rows, with and without area averaging."""

from __future__ import annotations

import numpy as np
import pytest

from fnn import data


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
