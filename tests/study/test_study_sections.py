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


@pytest.mark.parametrize(
    "text, says",
    [
        ("epochs: 1\nepochs: 2\n", "line 2, column 1: key 'epochs' given twice (first on line 1)"),
        ("learning_rat: 0.1\n", "unknown key 'learning_rat'; did you mean learning_rate?"),
        ("- 1\n- 2\n", "expected a mapping of option: value"),
    ],
)
def test_a_preset_is_read_as_fnn_train_reads_its_config_file(text, says, tmp_path, monkeypatch):
    from fnn.study import sections
    from fnn.train import FIELDS, read_settings

    for path in sorted(study.CONFIGS.glob("presets/*.yaml")):  # the shipped ones all read
        assert read_settings(path, FIELDS), path
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "bad.yaml").write_text(text)
    monkeypatch.setattr(sections, "CONFIGS", tmp_path)
    with pytest.raises(study.StudyError) as raised:
        sections.presets(None)
    assert str(raised.value) == f"{tmp_path / 'presets' / 'bad.yaml'}: {says}"
