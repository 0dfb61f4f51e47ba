"""fnn.plots.evaluation: the confusion-matrix figure."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import assert_png

from fnn.plots import confusion_figure

NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
RNG = np.random.default_rng(0)


def test_confusion_figure_writes_a_png(tmp_path):
    confusion = RNG.integers(0, 50, (10, 10)) + np.diag(np.full(10, 800))
    confusion[:, 6] = 0  # a class never predicted: precision undefined, must not break
    open_figures = plt.get_fignums()
    path = confusion_figure(confusion, NAMES, tmp_path / "new" / "dir" / "cm.png", title="test")
    assert path == tmp_path / "new" / "dir" / "cm.png"
    assert_png(path, 600, 600)
    assert plt.get_fignums() == open_figures


def test_confusion_figure_checks_names(tmp_path):
    with pytest.raises(ValueError, match="class names"):
        confusion_figure(np.eye(3, dtype=int), NAMES, tmp_path / "cm.png")
