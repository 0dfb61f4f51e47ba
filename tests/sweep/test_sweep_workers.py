"""Workers sharing one study: ``fnn sweep`` processes started together on a new SQLite file or
a new PostgreSQL database all start, run ``--count`` in total without repeating a random draw,
run each grid point once, and take over the trial of a worker killed with SIGKILL (its
heartbeat goes stale). Also in-process: a missing driver is one line, a rerun within a killed
trial's grace says when it is retried, and a count is shared by the runs that finish it."""

import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from postgres_support import postgres_server_fixture, postgres_url_fixture  # noqa: F401
from sweep_helpers import BASE, grid, last_point, orphan, points, quick, run, use_blobs, wait_for

from fnn import data, sweep
from fnn.cli import main
from fnn.sweep import optuna_storage, training
from fnn.sweep import workers as coordination
from fnn.sweep.optuna_storage import StorageLock

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT, GRACE = 1, 2  # seconds, for the worker processes (through the environment)

GRID = {  # 12 points of 4 epochs: a worker paused after epoch 2 is killed mid-trial
    "name": "g",
    "method": "grid",
    "metric": {"name": "val_accuracy", "goal": "maximize"},
    "parameters": {
        "epochs": {"value": 4},
        "hidden_size": {"values": [4, 8, 16]},
        "learning_rate": {"values": [0.001, 0.01]},
        "optimizer": {"values": ["adam", "sgd"]},
    },
}

RANDOM = {
    "name": "r",
    "method": "random",
    "metric": {"name": "val_accuracy", "goal": "maximize"},
    "parameters": {
        "epochs": {"value": 1},
        "hidden_size": {"values": [4, 8]},
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-3, "max": 1e-1},
    },
}


def idx_gz(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))


@pytest.fixture
def images(tmp_path) -> Path:
    """A data folder holding a tiny Fashion-MNIST look-alike (random images, 10 classes): the
    worker processes load it in milliseconds."""
    folder = tmp_path / "data" / data.DATASETS["fashion_mnist"]
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 600), ("test", 50)):
        idx_gz(folder / data.FILES[f"{split}_images"], rng.integers(0, 256, (n, 28, 28)))
        idx_gz(folder / data.FILES[f"{split}_labels"], np.arange(n) % 10)
    return folder.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path) -> str:
    """A new SQLite file, or a new database on a throwaway PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'sweeps.db'}"
    return request.getfixturevalue("postgres_url")


def child_environment(**extra: str) -> dict:
    """The environment of an ``fnn`` child process: this checkout first on its path, and a W&B
    service of its own (not this process's, named by WANDB_SERVICE once a test here used W&B)."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    inherited = {key: value for key, value in os.environ.items() if key != "WANDB_SERVICE"}
    return {**inherited, "PYTHONPATH": path, **extra}


# ``fnn sweep`` in a worker process; with FNN_TEST_PAUSE_EPOCH=E, the worker stops in its first
# trial right after reporting epoch E, prints ``paused in trial N`` and waits for a line on
# stdin (its heartbeat goes on meanwhile): a kill then lands mid-trial, whatever the speed
WORKER = """
import os, sys
pause_epoch = int(os.environ.get("FNN_TEST_PAUSE_EPOCH", "0"))
if pause_epoch:
    import optuna
    report, paused = optuna.trial.Trial.report, []

    def report_then_pause_once(trial, value, step):
        report(trial, value, step)
        if step == pause_epoch and not paused:
            paused.append(trial.number)
            print(f"paused in trial {trial.number}", flush=True)
            sys.stdin.readline()

    optuna.trial.Trial.report = report_then_pause_once
from fnn.cli import main
sys.exit(main())
"""


def start_workers(n: int, sweep: dict, storage: str, images: Path, tmp_path: Path, *options,
                  pause_epoch: int = 0) -> list[subprocess.Popen]:  # fmt: skip
    """``n`` ``fnn sweep`` processes started at once on ``storage``; their output goes to
    tmp_path/worker<i>.log; with ``pause_epoch``, each pauses in its first trial (``WORKER``)
    until a line is written to its stdin."""
    config = tmp_path / f"{sweep['name']}.yaml"
    config.write_text(json.dumps(sweep))  # JSON is YAML
    env = child_environment(**{
        coordination.HEARTBEAT_ENV: str(HEARTBEAT),
        coordination.GRACE_ENV: str(GRACE),
        "WANDB_MODE": "offline",
        "FNN_TEST_PAUSE_EPOCH": str(pause_epoch),
    })  # fmt: skip
    command = [sys.executable, "-c", WORKER, "sweep", str(config), "--backend", "local",
               "--storage", storage, "--tracker", "none", "--data_dir", str(images),
               *options]  # fmt: skip
    stdin = subprocess.PIPE if pause_epoch else subprocess.DEVNULL
    workers = []
    for i in range(n):
        with open(tmp_path / f"worker{i}.log", "w") as log:
            output = {"stdout": log, "stderr": subprocess.STDOUT, "text": True}
            workers.append(subprocess.Popen(command, stdin=stdin, env=env, **output))
    return workers


@pytest.fixture
def started(tmp_path):
    """``start_workers`` with ``tmp_path``; the workers a failing test leaves running are
    killed, and all of them waited for, when it ends."""
    workers: list[subprocess.Popen] = []

    def start(n: int, sweep: dict, storage: str, images: Path, *options, pause_epoch: int = 0):
        new = start_workers(n, sweep, storage, images, tmp_path, *options, pause_epoch=pause_epoch)
        workers.extend(new)
        return new

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        if worker.stdin is not None:
            worker.stdin.close()


def finish(workers, tmp_path: Path, timeout: float = 120) -> list[int]:
    """The workers' exit codes (each killed after ``timeout`` seconds, a safety net)."""
    codes = []
    for worker in workers:
        try:
            codes.append(worker.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            worker.kill()
            codes.append(worker.wait())
    return codes


def paused_trials(workers, tmp_path: Path) -> dict[int, int]:
    """The trial each worker said it paused in, by the worker's pid (so far)."""
    paused = {}
    for i, worker in enumerate(workers):
        said = re.search(r"^paused in trial (\d+)$", (tmp_path / f"worker{i}.log").read_text(),
                         re.MULTILINE)  # fmt: skip
        if said:
            paused[worker.pid] = int(said[1])
    return paused


def logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text()}" for path in sorted(tmp_path.glob("worker*.log"))
    )


def load(storage, name: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of study ``name`` (``storage``: a URL, or an RDBStorage to read again)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def pid(trial) -> str:
    return trial.user_attrs.get("worker", ":").rsplit(":", 1)[1]


def parameters(trial) -> tuple:
    return tuple(sorted(trial.params.items()))


@pytest.mark.parametrize("n", [2, 3])
def test_workers_started_together_all_start_and_share_the_count(n, storage, images, tmp_path,
                                                                started):  # fmt: skip
    workers = started(n, RANDOM, storage, images, "--count", "20")
    codes = finish(workers, tmp_path)
    assert codes == [0] * n, logs(tmp_path)
    trials = load(storage, "r")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 20, logs(tmp_path)  # a total
    assert len({parameters(t) for t in trials}) == 20  # no worker repeats another's draws
    seeds = {t.user_attrs["worker"]: t.user_attrs["sampler_seed"] for t in trials}
    assert len(set(seeds.values())) == len(seeds)  # one seed per worker, none shared


def test_a_worker_killed_mid_trial_is_taken_over_and_the_grid_runs_once(storage, images, tmp_path,
                                                                        started):  # fmt: skip
    # each worker pauses after epoch 2 of its first trial, so all three hold a trial at once;
    # one of them is killed there, the other two go on
    workers = started(3, GRID, storage, images, pause_epoch=2)

    def all_paused() -> bool:
        assert all(w.poll() is None for w in workers), "a worker ended first\n" + logs(tmp_path)
        return len(paused_trials(workers, tmp_path)) == 3

    wait_for(all_paused, "every worker to pause in its first trial")
    victim, *others = workers
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    number = paused_trials(workers, tmp_path)[victim.pid]
    killed = load(storage, "g")[number]
    assert killed.state.name == "RUNNING" and pid(killed) == str(victim.pid)
    assert len(killed.user_attrs["history"]["val_accuracy"]) == 2  # of 4 epochs: mid-trial
    for worker in others:
        worker.stdin.write("go on\n")
        worker.stdin.flush()
    codes = finish(workers, tmp_path)
    assert codes == [-signal.SIGKILL, 0, 0], logs(tmp_path)
    trials = load(storage, "g")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 12 and len({parameters(t) for t in complete}) == 12, logs(tmp_path)
    killed = trials[number]
    assert killed.state.name == "FAIL"  # failed by its stale heartbeat
    (retried,) = [t for t in trials if t.user_attrs.get("retry_of") == number]
    assert retried.state.name == "COMPLETE"  # queued again by the stale-trial callback
    assert retried.user_attrs["grid_point"] == killed.user_attrs["grid_point"]  # its point
    assert retried.params == killed.params
    assert len(trials) == 13, logs(tmp_path)  # nothing else ran twice, none skipped


@pytest.fixture
def synthetic_data(monkeypatch):
    return use_blobs(monkeypatch)


def test_a_missing_driver_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # import psycopg2 fails
    config = tmp_path / "g.yaml"
    config.write_text(json.dumps(GRID))
    url = "postgresql://fnn:secret@dbhost/sweeps"
    for args in (["sweep", str(config), "--backend", "local"], ["sweep-report", "g"]):
        assert main([*args, "--storage", url]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "pip install psycopg2-binary" in err and "secret" not in err


def test_a_bare_postgresql_url_uses_the_installed_driver(postgres_url, tmp_path, synthetic_data):
    # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; fnn's cli extra installs psycopg2
    bare = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    if optuna_storage._importable("psycopg2") and not optuna_storage._importable("psycopg"):
        assert optuna_storage.database_url(bare) == postgres_url
    study = sweep.run_local(
        grid(), count=None, base=BASE, storage=bare, tracker="none", say=lambda line: None
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert sweep.study_trials(sweep.load_study("t", bare))[0]["state"] == "COMPLETE"


def test_a_rerun_waits_for_a_killed_trial_and_runs_its_point_again(
    tmp_path, monkeypatch, synthetic_data
):
    monkeypatch.setattr(coordination, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(coordination, "GRACE_SECONDS", 3)
    run(grid(), tmp_path, count=3)
    number = orphan(tmp_path, "t", heartbeat=True, point=last_point(grid()))
    lines = []
    study = run(grid(), tmp_path, lines)  # nothing left to start: it waits for the orphan
    waiting = [line for line in lines if line.startswith(f"waiting for trial {number},")]
    assert len(waiting) == 1, lines
    assert waiting[0].endswith("is failed 3 s after its last heartbeat and run again")
    assert "grid exhausted: 3 of 4 points done, 1 running; no new trials" in lines[0]
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "COMPLETE"], lines
    assert study.trials[4].user_attrs["retry_of"] == number
    assert study.trials[4].user_attrs["grid_point"] == last_point(grid())


def test_a_trial_taken_by_a_worker_that_died_before_its_first_heartbeat_is_retried(
    tmp_path, monkeypatch, synthetic_data
):
    monkeypatch.setattr(coordination, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(coordination, "GRACE_SECONDS", 1)
    run(grid(), tmp_path, count=3)
    # RUNNING with no heartbeat ever: Optuna alone would never fail it
    number = orphan(tmp_path, "t", heartbeat=False, point=last_point(grid()))
    study = run(grid(), tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["FAIL", "COMPLETE"]
    assert study.trials[-1].user_attrs["retry_of"] == number
    assert study.trials[-1].user_attrs["grid_point"] == last_point(grid())


def test_a_queued_duplicate_of_a_finished_point_is_skipped(tmp_path, synthetic_data):
    run(grid(), tmp_path, count=1)
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    study = optuna.load_study(study_name="t", storage=storage)
    done = study.trials[0].params
    study.enqueue_trial(done, user_attrs={"grid_point": done})  # a stale copy in the queue
    lines = []
    study = run(grid(), tmp_path, lines)
    skipped = study.trials[1]
    assert skipped.state.name == "FAIL" and "skipped" in skipped.user_attrs
    assert sorted(points(study, "COMPLETE")) == [(8, "adam"), (8, "sgd"), (16, "adam"), (16, "sgd")]
    assert not any(line.startswith("trial   1 ") for line in lines)  # no line for it
    assert "study t: 1 trial so far (1 complete, 0 pruned, 0 failed); running 3 new" in lines


def test_the_grid_points_do_not_depend_on_the_order_of_the_parameters(tmp_path, synthetic_data):
    run(grid(), tmp_path, count=2)
    swapped = grid()
    swapped["parameters"] = dict(reversed(list(swapped["parameters"].items())))
    study = run(swapped, tmp_path)
    assert sorted(points(study)) == [(8, "adam"), (8, "sgd"), (16, "adam"), (16, "sgd")]


def test_an_interrupted_count_is_finished_by_the_same_command(tmp_path, monkeypatch):
    use_blobs(monkeypatch)
    real_fit, calls = training.fit, []

    def interrupted_fit(config, splits, **options):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_fit(config, splits, **options)

    monkeypatch.setattr(training, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        run(quick(), tmp_path, count=5)
    lines = []
    study = run(quick(), tmp_path, lines, count=5)  # the same command: 5 in all
    assert [t.state.name for t in study.trials].count("COMPLETE") == 5
    assert "running up to 3 new: --count 5 is the total" in lines[0]
    study = run(quick(), tmp_path, lines, count=5)  # that total reached: 5 more
    assert [t.state.name for t in study.trials].count("COMPLETE") == 10


def test_each_worker_gets_its_own_sampler_seed():
    fresh = {coordination._worker_seed(None, 0, 0) for _ in range(4)}
    assert len(fresh) == 4
    assert coordination._worker_seed(7, 0, 0) == 7  # a first run is repeatable as before
    derived = {coordination._worker_seed(7, number, 0) for number in range(1, 5)}
    assert len(derived) == 4 and 7 not in derived
    assert coordination._worker_seed(7, 1, 3) == coordination._worker_seed(7, 1, 3)


def test_the_heartbeat_can_be_shortened_through_the_environment(monkeypatch):
    monkeypatch.setenv(coordination.GRACE_ENV, "5")
    assert coordination.heartbeat_settings() == (coordination.HEARTBEAT_SECONDS, 5)
    monkeypatch.setenv(coordination.HEARTBEAT_ENV, "0")
    with pytest.raises(sweep.SweepConfigError, match="FNN_SWEEP_HEARTBEAT_SECONDS"):
        coordination.heartbeat_settings()


def blocked_on(path: Path, pid: int) -> bool:
    """Whether the kernel lists process ``pid`` as waiting for a ``flock`` of ``path``."""
    inode = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # 1: -> FLOCK ADVISORY WRITE <pid> <major:minor:inode> 0 EOF
        if fields[1:3] == ["->", "FLOCK"] and int(fields[5]) == pid:
            if int(fields[6].rsplit(":", 1)[1]) == inode:
                return True
    return False


def test_the_sqlite_lock_excludes_other_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    probe = """
import fcntl, os, sys, time
from fnn.sweep.optuna_storage import StorageLock
lock = StorageLock(sys.argv[1])
descriptor = os.open(lock.path, os.O_RDWR)  # first, without waiting: is the lock free?
try:
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free", flush=True)
except BlockingIOError:
    print("held", flush=True)
finally:
    os.close(descriptor)
lock.acquire()
print(time.time(), flush=True)
"""
    env = child_environment()
    with StorageLock(url) as lock:
        other = subprocess.Popen(
            [sys.executable, "-c", probe, url], stdout=subprocess.PIPE, text=True, env=env
        )
        assert other.stdout.readline() == "held\n"  # another process cannot take it

        def waiting() -> bool:
            assert other.poll() is None, "the probe ended while this process held the lock"
            return blocked_on(lock.path, other.pid)

        if Path("/proc/locks").exists():  # and its StorageLock.acquire waits for it
            wait_for(waiting, "the probe to wait for the lock")
        released = time.time()
    out, _ = other.communicate(timeout=60)
    assert other.returncode == 0
    assert float(out) >= released  # it got the lock once this process let it go
    assert (tmp_path / "sweeps.db.lock").exists()


def test_a_password_in_storage_is_never_printed_written_or_recorded(postgres_url, images,
                                                                      tmp_path):  # fmt: skip
    # (the throwaway server trusts local connections, so the password is accepted and unused)
    url = postgres_url.replace("://postgres@", "://postgres:s3cretPW@")
    config = tmp_path / "r.yaml"
    config.write_text(json.dumps({**RANDOM, "run_cap": 2}))
    env = child_environment(WANDB_MODE="offline", WANDB_DIR=str(tmp_path / "runs"))
    command = [sys.executable, "-m", "fnn"]
    swept = subprocess.run([*command, "sweep", str(config), "--backend", "local", "--storage",
                            url, "--data_dir", str(images), "--tracker", "wandb"], env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    reported = subprocess.run([*command, "sweep-report", "r", "--storage", url, "--out",
                               str(tmp_path / "report")], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    bad = subprocess.run([*command, "sweep", str(config), "--backend", "local", "--storage",
                          url.replace("127.0.0.1", "256.1.1.1"), "--data_dir", str(images)],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode != 0
    printed = swept.stdout + swept.stderr + reported.stdout + reported.stderr + bad.stderr
    assert "postgres:***@" in printed and "s3cretPW" not in printed
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "summary.md" for path in written)
    assert any(path.suffix == ".wandb" for path in written)  # the trials' W&B records
    leaks = [path for path in written if b"s3cretPW" in path.read_bytes()]
    assert leaks == [], leaks
