"""The live dashboard: ``fnn sweep`` prints the ``optuna-dashboard`` command for its storage;
started on a free local port against the finished sweep on SQLite, that command serves the
study and its trials over HTTP, with their values, parameters and fnn's user attributes."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from postgres_support import free_port
from sweep_helpers import grid, use_blobs, wait_for

from fnn.cli import main

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard: pip install 'fnn[dashboard]'")
# its console script, installed beside this interpreter (or else on the PATH)
SCRIPTS = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
DASHBOARD = shutil.which("optuna-dashboard", path=SCRIPTS)
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1


def get(port: int, path: str) -> dict:
    with LOCAL.open(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return json.load(response)


@contextlib.contextmanager
def serving(command: list[str]):
    """The port of the dashboard started with ``command`` on a free port (Python's own WSGI
    server), once it answers; stopped on leaving. A port taken by another process between
    choosing and binding it makes the server exit: then a new one is tried."""
    for _ in range(5):
        port = free_port()
        server = subprocess.Popen([*command, "--server", "wsgiref", "--host", "127.0.0.1",
                                   "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:

            def answers(server=server, port=port) -> bool:
                if server.poll() is not None:
                    return True
                try:
                    get(port, "/api/studies")
                    return True
                except OSError:
                    return False

            wait_for(answers, "the dashboard to answer")
            if server.poll() is None:
                yield port
                return
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    raise AssertionError("the dashboard found no free port in 5 tries")


def test_the_printed_dashboard_command_serves_the_finished_sweep(tmp_path, monkeypatch, capsys):
    use_blobs(monkeypatch)
    config = tmp_path / "t.yaml"
    config.write_text(json.dumps(grid()))  # JSON is YAML
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["sweep", str(config), "--backend", "local", "--storage", storage,
                 "--tracker", "none"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    (url,) = re.findall(r"^watch it live: optuna-dashboard (\S+)", printed, re.MULTILINE)
    assert url == storage

    assert DASHBOARD is not None, "optuna_dashboard is importable but its script is not found"
    with serving([DASHBOARD, url]) as port:
        (summary,) = get(port, "/api/studies")["study_summaries"]
        assert summary["study_name"] == "t" and summary["directions"] == ["maximize"]
        trials = get(port, f"/api/studies/{summary['study_id']}")["trials"]

    assert [trial["state"] for trial in trials] == ["Complete"] * 4
    points = set()
    for trial in trials:
        params = {p["name"]: p["param_external_value"] for p in trial["params"]}
        points.add((params["hidden_size"], params["optimizer"]))
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert attrs["metric"] == "val_accuracy"
        point = json.loads(attrs["grid_point"])
        assert {name: str(value) for name, value in point.items()} == params
        assert attrs["run_name"].endswith(f"_t{trial['number']}")
        config = json.loads(attrs["config"])
        assert str(config["hidden_size"]) == params["hidden_size"]
        assert config["optimizer"] == params["optimizer"]
        history = json.loads(attrs["history"])
        assert trial["values"] == [history["val_accuracy"][-1]]
    assert points == {(h, o) for h in ("8", "16") for o in ("adam", "sgd")}
