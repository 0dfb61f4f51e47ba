"""The database the workers of a local sweep share: its driver (a missing one is one line
saying what to install), ``StorageLock``, and ``retry_creation``.

Every worker takes the lock while it creates Optuna's tables and the study, and again each
time it claims its next trial (a few milliseconds), so workers started together do not race
and two workers never take the same grid point:

- PostgreSQL: a session-level advisory lock (``pg_advisory_lock``), across machines.
- SQLite: an exclusive ``flock`` on ``<database file>.lock`` beside the database, across the
  processes of one machine (SQLite is not meant for several machines, nor for NFS). A worker
  deletes it when done (``StorageLock.remove``); the next one to take the lock makes a new one.
- Other databases (e.g. MySQL): no lock; creating the tables and the study is retried.

The server or the operating system drops the lock of a worker that dies.

SQLAlchemy and Optuna are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fnn.sweep.config import SweepConfigError

T = TypeVar("T")

# pg_advisory_lock takes a 64-bit key: one for every fnn sweep on a database
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"fnn sweep").digest()[:8], "big", signed=True)

# The package to install for a SQLAlchemy driver (the part of the URL before ://)
DRIVER_PACKAGES = {
    "postgresql": "psycopg2-binary",
    "postgresql+psycopg2": "psycopg2-binary",
    "postgresql+psycopg": "'psycopg[binary]'",
    "postgresql+pg8000": "pg8000",
    "mysql": "mysqlclient",
    "mysql+mysqldb": "mysqlclient",
    "mysql+pymysql": "pymysql",
    "mysql+mysqlconnector": "mysql-connector-python",
}

CREATION_ATTEMPTS = 6  # creating the tables and the study, when a concurrent creator collides


def shown(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def database_url(url: str) -> str:
    """``url`` as SQLAlchemy is to open it. A bare ``postgresql://`` means SQLAlchemy's default
    driver, psycopg 3 since SQLAlchemy 2.1; when only psycopg2 (the driver of fnn's ``cli``
    extra) is installed, it is used instead."""
    if url.startswith("postgresql://") and _importable("psycopg2") and not _importable("psycopg"):
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked (None in sys.modules)
        return False


def _engine(url: str, **options: Any) -> Any:
    """A SQLAlchemy engine for ``url``; a missing driver is a one-line ``SweepConfigError``."""
    import sqlalchemy

    try:
        return sqlalchemy.create_engine(database_url(url), **options)
    except ImportError as error:
        driver = url.split("://", 1)[0]
        package = DRIVER_PACKAGES.get(driver, error.name or "the driver")
        raise SweepConfigError(
            f"storage {shown(url)}: its database driver is not installed (no module named "
            f"{error.name!r}); install it with `pip install {package}`"
        ) from None


def check_driver(url: str) -> None:
    """Refuse, in one line, a database URL whose driver is not installed."""
    _engine(url).dispose()


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite:"):
        return None
    import sqlalchemy

    database = sqlalchemy.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


class StorageLock:
    """The lock all workers on one database take (see the module's docstring). ``release`` may
    be called when the lock is not held: a trial releases it as soon as it has been claimed,
    and the claim's ``finally`` releases it again."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.kind = "none"
        self._engine: Any = None
        self._held: Any = None
        if url is None:
            return
        path = sqlite_path(url)
        if path is not None:
            try:
                import fcntl  # noqa: F401 - POSIX only: elsewhere, SQLite workers go unlocked
            except ImportError:
                return
            self.kind, self.path = "sqlite", path.with_name(path.name + ".lock")
        elif url.startswith("postgresql"):
            from sqlalchemy.pool import NullPool

            self.kind = "postgresql"
            self._engine = _engine(url, poolclass=NullPool)  # closing a connection unlocks

    def acquire(self) -> None:
        if self._held is not None or self.kind == "none":
            return
        if self.kind == "sqlite":
            import fcntl

            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX)
                    same = _same_file(descriptor, self.path)
                except BaseException:
                    os.close(descriptor)
                    raise
                if same:
                    self._held = descriptor
                    return
                os.close(descriptor)  # ``remove`` deleted that file meanwhile: take the new one
        else:
            import sqlalchemy

            connection = self._engine.connect()
            try:
                connection.execute(sqlalchemy.text(f"SELECT pg_advisory_lock({ADVISORY_KEY})"))
                connection.commit()
            except BaseException:
                connection.close()
                raise
            self._held = connection

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if self.kind == "sqlite":
            import fcntl

            try:
                fcntl.flock(held, fcntl.LOCK_UN)
            finally:
                os.close(held)
        else:
            held.close()  # the session ends, and its advisory lock with it

    def remove(self) -> None:
        """Delete SQLite's lock file, once this worker is done with it: taken first, so that no
        other worker holds it; one that waits for it meanwhile finds it gone and takes a new
        one (``acquire`` checks that the file it locked is still the one at the path)."""
        if self.kind != "sqlite" or not self.path.exists():
            return
        try:
            self.acquire()
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            self.release()

    def __enter__(self) -> StorageLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def _same_file(descriptor: int, path: Path) -> bool:
    """Whether the open file ``descriptor`` is still the file at ``path``."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


def retry_creation(create: Callable[[], T]) -> T:
    """``create()``, tried again after a short random pause when it collides with another
    worker creating the same tables or study at the same moment (an integrity error, a table
    or type that already exists, a locked SQLite file): the next attempt finds them made."""
    import optuna
    import sqlalchemy

    collisions = (
        sqlalchemy.exc.IntegrityError,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.ProgrammingError,
        optuna.exceptions.StorageInternalError,
    )
    for attempt in range(1, CREATION_ATTEMPTS + 1):
        try:
            return create()
        except collisions:
            if attempt == CREATION_ATTEMPTS:
                raise
            time.sleep(random.SystemRandom().uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")
