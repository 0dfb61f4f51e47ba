"""fnn study: the whole pipeline on a tiny subset (real data; no accuracy asserted) and the
pieces that turn results into choices and words."""

from __future__ import annotations

import json

import pytest

from fnn import study
from fnn.cli import main


def test_quick_study_writes_every_artefact(data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["study", "--budget", "quick", "--train_subset", "300", "--out", str(out),
            "--data_dir", str(data_dir), "--tracker", "none"]  # fmt: skip
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(study.SECTIONS) <= set(results) and results["seconds"]["total"] > 0
    summary = (out / "SUMMARY.md").read_text()
    for heading in ("## 1.", "## 2. Optimizers", "## 3.", "## 4.", "## 5.", "## 6.", "## 7.",
                    "## 8."):  # fmt: skip
        assert heading in summary
    # every figure the summary shows exists
    for line in summary.splitlines():
        if line.startswith("!["):
            assert (out / line.split("(")[1].rstrip(")")).stat().st_size > 1000, line
    assert [row["name"] for row in results["optimizers"]["rows"]].count("eve") == 1
    assert len(results["optimizers"]["rows"]) == 7
    assert results["sweeps"]["ce"]["states"].get("COMPLETE", 0) >= 1
    assert len(results["mnist"]["rows"]) == 3
    assert len(results["presets"]["rows"]) == 6
    # the saved best model gives the same test accuracy when evaluated on its own
    capsys.readouterr()
    checkpoint = out / results["final"]["checkpoint"]
    assert main(["evaluate", str(checkpoint), "--json", "--data_dir", str(data_dir)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(results["final"]["test_accuracy"])
    if "skipped" not in results["torch"]:
        assert results["torch"]["max_loss_difference"] < 1e-10
        assert results["torch"]["max_weight_difference"] < 1e-10


def test_bad_budget_is_a_usage_error(capsys):
    assert main(["study", "--budget", "huge"]) == 2
    assert "--budget must be one of quick, full" in capsys.readouterr().err


def sweep_result(name, value, config, top=()):
    best = None if value is None else {"trial": 0, "val_accuracy": value, "config": config}
    return {"study": name, "best": best, "top": [dict(c, val_accuracy=0.5) for c in top]}


def test_best_and_mnist_choices_are_distinct_and_reasoned():
    a, b, c = ({"optimizer": name, "learning_rate": 0.001} for name in ("adam", "nadam", "sgd"))
    results = {
        "ce": sweep_result("ce", 0.88, a, top=[a, b]),
        "mse": sweep_result("mse", 0.86, a),
        "wide": sweep_result("wide", 0.90, c, top=[c]),
    }
    assert study.best_of(results) == ("wide", results["wide"]["best"])
    chosen = study.mnist_choices(results)
    assert [config for _, _, config in chosen] == [c, a, b]  # the MSE best repeats a: skipped
    assert all(reason for _, reason, _ in chosen)
    with pytest.raises(study.StudyError, match="no sweep trial completed"):
        study.best_of({"ce": sweep_result("ce", None, a)})


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
