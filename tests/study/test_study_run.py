"""fnn study end to end: the whole pipeline on a tiny subset (real data; no accuracy asserted)
through the CLI, and its usage error."""

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


def test_a_study_of_another_budget_is_not_written_over(tmp_path, capsys):
    from fnn.cli import main

    out = tmp_path / "study"
    out.mkdir()
    (out / "results.json").write_text('{"budget": "full", "train_subset": null}')
    (out / "SUMMARY.md").write_text("the full study")
    with pytest.raises(study.StudyError, match="holds a study of budget full"):
        study.run(out, budget="quick", tracker="none")
    assert main(["study", "--budget", "quick", "--out", str(out), "--tracker", "none"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"fnn: {out} holds a study of budget full (train_subset None); choose another --out, "
        "or --overwrite to replace it"
    )
    assert (out / "SUMMARY.md").read_text() == "the full study"
    assert sorted(p.name for p in out.iterdir()) == ["SUMMARY.md", "results.json"]
