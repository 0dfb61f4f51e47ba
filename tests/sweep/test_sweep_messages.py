"""A sweep whose database goes away says so in one line: a SQLite file deleted mid-sweep, a
PostgreSQL server stopped mid-sweep (the trials finished before it stopped survive). A study
name in a script the figures' font lacks draws without a warning per glyph, and a SQLite
sweep leaves no lock file behind."""

import json
import warnings

import optuna
import pytest
from postgres_support import missing, postgres_server
from sweep_helpers import grid, run, use_blobs

from fnn import sweep
from fnn.cli import main
from fnn.sweep import training


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    return use_blobs(monkeypatch)


def sweep_until(monkeypatch, trial: int, action) -> None:
    """Run ``action()`` as the sweep's trial number ``trial`` (0-based) starts to train."""
    real_fit, calls = training.fit, []

    def fit(config, splits, **options):
        calls.append(config)
        if len(calls) == trial + 1:
            action()
        return real_fit(config, splits, **options)

    monkeypatch.setattr(training, "fit", fit)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_sqlite_file_deleted_mid_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    database = tmp_path / "sweeps.db"
    config = tmp_path / "t.yaml"
    config.write_text(json.dumps(grid()))
    sweep_until(monkeypatch, 1, database.unlink)
    storage = f"sqlite:///{database}"
    assert main(["sweep", str(config), "--backend", "local", "--storage", storage,
                 "--tracker", "none"]) == 1  # fmt: skip
    err = one_line_error(capsys)
    assert f"the database file {database} is gone" in err, err
    assert not (tmp_path / "sweeps.db.lock").exists()


@pytest.mark.skipif(missing() is not None, reason="PostgreSQL is not installed")
def test_a_postgresql_server_stopped_mid_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    config = tmp_path / "t.yaml"
    config.write_text(json.dumps(grid()))
    with postgres_server() as server:
        url = server.new_database()
        sweep_until(monkeypatch, 2, server.stop)
        assert main(["sweep", str(config), "--backend", "local", "--storage", url,
                     "--tracker", "none"]) == 1  # fmt: skip
        err = one_line_error(capsys)
        assert "the database failed (" in err and "OperationalError" in err, err
    # (the server's folder is gone with it: the trials' survival is Optuna's, not tested here)


def test_a_study_name_the_font_lacks_draws_without_glyph_warnings(tmp_path):
    study = run(grid(name="研究"), tmp_path)
    assert study.study_name == "研究"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph ... missing" warning would fail here
        written = sweep.report("研究", out=tmp_path / "report",
                               storage=f"sqlite:///{tmp_path / 'sweeps.db'}")  # fmt: skip
    assert written["metric_by_run"].stat().st_size > 0


def test_a_sqlite_sweep_leaves_no_lock_file(tmp_path):
    run(grid(), tmp_path, count=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps.db"]
    trials = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'sweeps.db'}")
    assert len(trials.trials) == 2
