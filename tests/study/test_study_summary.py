"""fnn study's words: the loss verdict that follows from the sweeps' numbers, and the
one-line description of a configuration that SUMMARY.md uses."""

from __future__ import annotations

import pytest

from fnn import study


@pytest.mark.parametrize(
    ("ce", "mse", "start"),
    [((0.88, 0.85), (0.86, 0.80), "cross-entropy is better"),
     ((0.80, 0.70), (0.85, 0.75), "squared error is better"),
     ((0.88, 0.70), (0.86, 0.75), "mixed")],
)  # fmt: skip
def test_loss_verdict_follows_the_numbers(ce, mse, start):
    verdict = study.loss_verdict(
        {"n": 5, "best": ce[0], "median": ce[1]}, {"n": 5, "best": mse[0], "median": mse[1]}
    )
    assert verdict.startswith(start)


def test_describe_is_one_line():
    text = study.describe(
        {"hidden_sizes": [512, 512], "activation": "relu", "optimizer": "adam",
         "learning_rate": 0.001, "lr_schedule": "cosine", "batch_size": 128, "epochs": 1,
         "weight_init": "xavier", "dropout": 0.2, "loss": "mean_squared_error"}
    )  # fmt: skip
    assert text == ("512-512 relu, adam lr 0.001 cosine, batch 128, 1 epoch, xavier init, "
                    "dropout 0.2, squared error")  # fmt: skip
