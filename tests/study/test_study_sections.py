"""fnn study's sections: how the best configuration and the MNIST choices are picked from the
sweeps' results."""

from __future__ import annotations

import pytest

from fnn import study


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


def test_a_preset_is_read_as_fnn_train_reads_its_config_file(tmp_path, monkeypatch):
    from fnn.study import sections
    from fnn.train import read_yaml

    for path in sorted(study.CONFIGS.glob("presets/*.yaml")):  # the shipped ones all read
        assert isinstance(read_yaml(path), dict), path
    (tmp_path / "presets").mkdir()
    bad = tmp_path / "presets" / "twice.yaml"
    bad.write_text("epochs: 1\nepochs: 2\n")
    monkeypatch.setattr(sections, "CONFIGS", tmp_path)
    with pytest.raises(study.StudyError, match=r"twice\.yaml: line 2, column 1: key 'epochs' "
                                               r"given twice \(first on line 1\)"):  # fmt: skip
        sections.presets(None)
