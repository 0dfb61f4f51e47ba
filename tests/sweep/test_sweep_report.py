"""Sweeps: the report of a local study (figures, Markdown, HTML, importances) and of an
unknown source; the correlation importance."""

import math

import pytest
from sweep_helpers import quick, run, use_blobs

from fnn import sweep


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    """Every split is the blobs; counts how often the loader ran."""
    return use_blobs(monkeypatch)


def test_report_of_a_local_study(tmp_path):
    study = run(quick(), tmp_path, count=6)
    paths = sweep.report("t", out=tmp_path / "report", storage=f"sqlite:///{tmp_path}/sweeps.db")
    names = {"parallel_coordinates", "metric_by_run", "importance", "importance_table"}
    assert names | {"summary", "index"} == set(paths)
    assert all(path.exists() and path.stat().st_size > 0 for path in paths.values())
    text = paths["summary"].read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    values = [float(line.split(" | ")[2]) for line in table[:6]]
    assert values == sorted(values, reverse=True)
    best = max(study.trials, key=lambda t: t.value)
    assert f"| 1 | {best.number} | {best.value:.4f} |" in text
    assert "6 complete" in text and "Method:" in text
    assert "![Parallel coordinates](parallel_coordinates.png)" in text
    page = paths["index"].read_text()
    assert '<img src="metric_by_run.png"' in page and f"{best.value:.4f}" in page
    assert paths["importance_table"].read_text().startswith("parameter,importance\n")


def test_report_of_an_unknown_source_lists_the_studies(tmp_path):
    run(quick(), tmp_path, count=1)
    with pytest.raises(sweep.SweepConfigError, match=r"studies: t\)"):
        sweep.report("nope", out=tmp_path / "r", storage=f"sqlite:///{tmp_path}/sweeps.db")
    with pytest.raises(sweep.SweepConfigError, match="no storage"):
        sweep.report("nope", out=tmp_path / "r", storage=f"sqlite:///{tmp_path}/missing.db")


def test_correlation_importance():
    rows = [(0.1, 8, "tanh"), (0.2, 16, "tanh"), (0.4, 32, "relu"), (0.3, 24, "relu")]
    trials = [{"state": "COMPLETE", "value": v, "width": w, "act": a} for v, w, a in rows]
    trials.append({"state": "FAIL", "value": None, "width": 64, "act": "tanh"})
    importances = sweep.correlation_importance(trials, ["width", "act"])
    assert importances["width"] == pytest.approx(1.0)  # ranks match the metric's exactly
    # correlation ratio: between-group over total sum of squares, around the mean 0.25
    between, total = 2 * 0.1**2 + 2 * 0.1**2, 0.15**2 + 0.05**2 + 0.15**2 + 0.05**2
    assert importances["act"] == pytest.approx(math.sqrt(between / total))
