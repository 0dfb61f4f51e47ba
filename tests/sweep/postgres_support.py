"""A throwaway PostgreSQL server for the tests of workers sharing a study: ``initdb`` into a
temporary folder (as the ``postgres`` user when the tests run as root, since initdb refuses
root), ``pg_ctl start`` on a free port of 127.0.0.1, and ``postgres_url``, a new empty
database on it for each test. The server is stopped and its folder removed afterwards. When
PostgreSQL (or psycopg2) is not installed, the tests that use it skip with one line.

A test module imports the fixtures it uses (``from postgres_support import
postgres_url_fixture  # noqa: F401``); a second conftest.py would shadow ``from conftest
import ...``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest


def find_program(name: str) -> str | None:
    """``name`` on the PATH, else in Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which(name)
    if found:
        return found
    versions = [Path(path) for path in glob.glob(f"/usr/lib/postgresql/*/bin/{name}")]
    versions.sort(key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    return str(versions[-1]) if versions else None


def missing() -> str | None:
    """Why the PostgreSQL tests cannot run here (one line), or None."""
    if find_program("initdb") is None or find_program("pg_ctl") is None:
        return "PostgreSQL is not installed (no initdb/pg_ctl): apt-get install postgresql"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: pip install psycopg2-binary"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list, what: str, log: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        if log is not None and log.exists():
            detail += log.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{what} failed ({result.returncode}): " + " | ".join(detail))


@contextlib.contextmanager
def postgres_server() -> Iterator[SimpleNamespace]:
    """A PostgreSQL server in a temporary folder: ``.new_database()`` returns the SQLAlchemy URL
    of a new empty database (psycopg2 driver); ``.stop()`` stops it early."""
    initdb, pg_ctl = find_program("initdb"), find_program("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="fnn-postgres-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log, port = root / "data", root / "server.log", free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    started = False
    try:
        _run([*as_postgres, initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
              "-E", "UTF8", "--no-sync"], "initdb")  # fmt: skip
        _run([*as_postgres, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w",
              "-t", "60", "start"], "pg_ctl start", log)  # fmt: skip
        started = True

        def new_database() -> str:
            import psycopg2

            name = f"fnn_{uuid.uuid4().hex[:12]}"
            connection = psycopg2.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres"
            )
            try:
                connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute(f"CREATE DATABASE {name}")
            finally:
                connection.close()
            return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{name}"

        def stop() -> None:
            """Stop the server now (``pg_ctl stop -m fast``), as an administrator would."""
            _run([*as_postgres, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                 "pg_ctl stop", log)  # fmt: skip

        yield SimpleNamespace(port=port, root=root, new_database=new_database, stop=stop)
    finally:
        try:
            if started:
                subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "-w",
                                "stop"], capture_output=True, timeout=60)  # fmt: skip
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", name="postgres_server")
def postgres_server_fixture() -> Iterator[SimpleNamespace]:
    """One throwaway server for the module's tests (skips when PostgreSQL is not installed)."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture(name="postgres_url")
def postgres_url_fixture(postgres_server) -> str:
    """The URL of a new, empty database: ``postgresql+psycopg2://postgres@127.0.0.1:PORT/NAME``."""
    return postgres_server.new_database()
