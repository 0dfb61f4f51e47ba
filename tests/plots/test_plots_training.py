"""fnn.plots.training: curves of several runs."""

import numpy as np
import pytest
from conftest import assert_png

from fnn.plots import curves


def test_curves_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    histories = {
        name: [
            {
                "epoch": epoch,
                "val_accuracy": base + 0.02 * epoch,
                "val_loss": 1 - base + rng.random() / epoch,
            }
            for epoch in range(1, 6)
        ]
        for name, base in [("sgd", 0.7), ("adam", 0.8), ("nadam", 0.82)]
    }
    del histories["adam"][2]["val_loss"]  # a record missing a metric is skipped
    path = curves(histories, tmp_path / "c" / "curves.png", title="optimizers")
    assert_png(path, 400, 900)
    one_panel = curves(histories, tmp_path / "acc.png", metrics=["val_accuracy", "train_loss"])
    assert_png(one_panel)
    with pytest.raises(ValueError, match="metric"):
        curves(histories, tmp_path / "x.png", metrics=[])
