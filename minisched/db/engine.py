"""Engines per backend: SQLite that never says "database is locked", PostgreSQL that is safe after fork()."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from minisched.settings import ConfigError, mask_secrets

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0

_engines_to_reset: weakref.WeakSet[Engine] = weakref.WeakSet()


def parse_db_url(url: str) -> URL:
    """Parse a SQLAlchemy URL; a driver-less `postgresql://` means psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URL {mask_secrets(url)!r}: {exc}") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"unsupported database {backend!r} in {mask_secrets(url)!r}; use sqlite:/// or postgresql://"
        )
    return parsed


def make_engine(url: str, *, for_migrations: bool = False, echo: bool = False) -> Engine:
    """Create an engine tuned for its backend; migrations run with SQLite foreign keys off (batch mode)."""
    parsed = parse_db_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, foreign_keys=not for_migrations, echo=echo)
    else:
        engine = create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
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
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
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
        # immediately with "database is locked" instead of waiting for the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _reset_engines_after_fork() -> None:
    # A forked child must never reuse the parent's pooled connections (both would talk over one socket).
    for engine in list(_engines_to_reset):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_engines_after_fork)
