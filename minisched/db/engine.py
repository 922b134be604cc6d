"""Engines per backend: SQLite that never says "database is locked", PostgreSQL that is safe after fork()."""

from __future__ import annotations

import contextlib
import os
import stat
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from minisched.db.prepared import execute_text
from minisched.settings import ConfigError, mask_secrets

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0
#: An execution option: this connection's transactions only read (see `read_only_engine`).
READ_ONLY_OPTION = "minisched_read_only"
#: That option's value for a connection whose reads need no common snapshot (see `read_only_engine`).
EACH_STATEMENT = "each_statement"

_engines_to_reset: weakref.WeakSet[Engine] = weakref.WeakSet()


def parse_db_url(url: str) -> URL:
    """Parse a SQLAlchemy URL; a driver-less `postgresql://` means psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URL {mask_secrets(url)!r}: {exc}") from None
    if parsed.host and "@" in parsed.host:
        # The password held an unencoded '@': the rest of it was read as part of the host name.
        raise ConfigError(
            f"the database URL {mask_secrets(url)!r} has an '@' in its password or host; "
            "URL-encode it (write %40 for @, e.g. urllib.parse.quote_plus(password))"
        )
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"unsupported database {backend!r} in {mask_secrets(url)!r}; use sqlite:/// or postgresql://"
        )
    return parsed


def make_engine(
    url: str, *, for_migrations: bool = False, echo: bool = False, pre_ping: bool = True
) -> Engine:
    """Create an engine tuned for its backend; migrations run with SQLite foreign keys off (batch mode).

    `pre_ping=False` saves the round trip that checks a pooled PostgreSQL connection at each checkout:
    for callers whose every transaction goes through `run_with_retries`, which retries one that meets
    a connection the server dropped (the error invalidates the pool)."""
    parsed = parse_db_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, foreign_keys=not for_migrations, echo=echo)
    else:
        engine = create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=pre_ping,
            pool_size=5,
            max_overflow=10,
            pool_recycle=1800,
            connect_args={"connect_timeout": 10, "application_name": "minisched"},
        )
    _engines_to_reset.add(engine)
    return engine


def _sqlite_engine(url: URL, *, foreign_keys: bool, echo: bool) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        _make_private(Path(database).expanduser())
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so the driver must not open transactions implicitly.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that later upgrades to a writer fails
        # immediately with "database is locked" instead of waiting for the busy timeout. A reader
        # needs no lock at all in WAL mode, and must not queue behind the writers for one.
        # Straight on the cursor (`prepared.execute_text`): through SQLAlchemy's execution path this
        # statement cost as much CPU as a small SELECT, in every transaction.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        if read_only == EACH_STATEMENT:
            return  # the driver is in autocommit mode: each statement reads its own snapshot
        execute_text(connection, "BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def read_only_engine(engine: Engine, *, each_statement: bool = False) -> Engine:
    """`engine` (sharing its pool) for transactions that only read: on SQLite they begin deferred,
    so they neither take nor wait for the write lock. `each_statement`: on SQLite no transaction at
    all, each statement is its own (for a read that is one statement: the BEGIN cost a tenth of the
    API's DAG list)."""
    return engine.execution_options(**{READ_ONLY_OPTION: EACH_STATEMENT if each_statement else True})


def _make_private(path: Path) -> None:
    """The SQLite file is 0600 whatever the umask: it holds run confs, the audit trail and, later,
    secrets. SQLite gives its -wal and -shm files the database file's mode.

    An existing file is changed by path only: closing any descriptor of a database file would drop
    the POSIX locks this process's open SQLite connections hold on it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            with contextlib.suppress(OSError):  # not our file: leave it to its owner
                os.chmod(path, mode & 0o700)


def backend_name(engine: Engine) -> str:
    return engine.dialect.name


def _reset_engines_after_fork() -> None:
    # A forked child must never reuse the parent's pooled connections (both would talk over one socket).
    for engine in list(_engines_to_reset):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_engines_after_fork)
