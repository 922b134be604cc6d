"""Schema management through alembic: init, upgrade, downgrade, check — under a global migration lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import Connection, Engine, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError

from minisched.db.engine import make_engine
from minisched.exceptions import MinischedError
from minisched.models import DEFAULT_POOL_NAME, DEFAULT_POOL_SLOTS, Base, Pool
from minisched.settings import mask_secrets

if TYPE_CHECKING:
    from alembic.config import Config

_ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"minisched-migrations").digest()[:8], "big", signed=True)


def script_location() -> str:
    """Where the alembic history lives: the installed `minisched_migrations`, else the checkout's folder."""
    spec = importlib.util.find_spec("minisched_migrations")
    if spec is not None and spec.submodule_search_locations:
        return str(next(iter(spec.submodule_search_locations)))
    return str(Path(__file__).resolve().parents[2] / "migrations")


def alembic_config(db_url: str, connection: Connection | None = None, stdout: TextIO | None = None) -> Config:
    from alembic.config import Config

    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", script_location())
    # ConfigParser interpolation treats '%' specially; URLs may contain percent-encoded characters.
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision(db_url: str) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert head is not None
    return head


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """Hold the global migration lock and yield a connection to migrate on.

    PostgreSQL: a session-level advisory lock; SQLite: an exclusive file lock beside the database file.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
                connection.commit()
        else:
            with _sqlite_file_lock(engine):
                yield connection


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migration.lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _database_errors(db_url: str) -> Iterator[None]:
    """Turn driver and alembic errors into one line that names the (masked) database."""
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        raise MinischedError(f"{mask_secrets(str(exc))} (database {mask_secrets(db_url)})") from None
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise MinischedError(f"cannot use database {mask_secrets(db_url)}: {mask_secrets(reason)}") from None


def _under_lock(db_url: str, work: Callable[[Connection], None]) -> None:
    """Run `work` on a migration connection while holding the global lock, then commit."""
    with _database_errors(db_url):
        engine = make_engine(db_url, for_migrations=True)
        try:
            with migration_lock(engine) as connection:
                work(connection)
                connection.commit()
        finally:
            engine.dispose()


def upgrade(db_url: str, revision: str = "heads") -> None:
    """Upgrade under the global lock; a concurrent second caller waits, then has nothing to do."""
    from alembic import command

    _under_lock(db_url, lambda connection: command.upgrade(alembic_config(db_url, connection), revision))


def upgrade_sql(db_url: str, revision: str = "heads") -> str:
    """The SQL an upgrade would run (alembic offline mode), without touching the database."""
    from alembic import command

    buffer = io.StringIO()
    target = revision if ":" in revision else f"base:{revision}"
    with _database_errors(db_url):
        command.upgrade(alembic_config(db_url, stdout=buffer), target, sql=True)
    return buffer.getvalue()


def downgrade(db_url: str, revision: str) -> None:
    from alembic import command

    _under_lock(db_url, lambda connection: command.downgrade(alembic_config(db_url, connection), revision))


def current_revision(db_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with _database_errors(db_url):
        engine = make_engine(db_url)
        try:
            with engine.connect() as connection:
                heads = MigrationContext.configure(connection).get_current_heads()
        finally:
            engine.dispose()
    return ",".join(heads) if heads else None


def check_connection(db_url: str) -> None:
    with _database_errors(db_url):
        engine = make_engine(db_url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()


def is_at_head(db_url: str) -> bool:
    return current_revision(db_url) == head_revision(db_url)


def initdb(db_url: str) -> None:
    """Create or upgrade the schema to head and make sure `default_pool` exists. Safe to run again."""
    from alembic import command

    def work(connection: Connection) -> None:
        command.upgrade(alembic_config(db_url, connection), "heads")
        _ensure_default_pool(connection)

    _under_lock(db_url, work)


def _ensure_default_pool(connection: Connection) -> None:
    if connection.scalar(select(Pool.id).where(Pool.pool == DEFAULT_POOL_NAME)) is None:
        connection.execute(
            insert(Pool).values(pool=DEFAULT_POOL_NAME, slots=DEFAULT_POOL_SLOTS, description="Default pool")
        )


def resetdb(db_url: str) -> None:
    """Drop every minisched table (and alembic's version table), then initdb."""

    def drop_everything(connection: Connection) -> None:
        existing = set(inspect(connection).get_table_names())
        tables = [table for table in Base.metadata.sorted_tables if table.name in existing]
        Base.metadata.drop_all(connection, tables=tables)
        if "alembic_version" in existing:
            connection.execute(text("DROP TABLE alembic_version"))

    _under_lock(db_url, drop_everything)
    initdb(db_url)
