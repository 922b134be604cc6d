"""Session helpers in Airflow's shape: `create_session()` at the edges, `@provide_session` for helpers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from minisched.db import prepared
from minisched.db.engine import make_engine, read_only_engine
from minisched.settings import get_settings

P = ParamSpec("P")
R = TypeVar("R")

#: Default for a `session` parameter that `@provide_session` fills in (typed as Session for callers).
NEW_SESSION: Session = cast(Session, None)

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
_read_session_factory: sessionmaker[Session] | None = None
_core_session_factory: sessionmaker[Session] | None = None
_statement_read_engine: Engine | None = None


class CoreSession(Session):
    """A Session whose `execute` of a Core statement (on tables, not mapped classes; no options)
    goes straight to the transaction's connection: the same statement, parameters, result and
    transaction, without the ORM's per-statement set-up (~15-20% of a statement's CPU on SQLite).

    On SQLite, what `db.prepared` supports skips SQLAlchemy's execution path too: run on the cursor.

    For the scheduler loop, whose hot statements are all Core (`scheduler.statements`). ORM
    statements (`select(Model)`) and calls with execution options take the ORM's path as before.
    """

    def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and statement._propagate_attrs.get("compile_state_plugin") != "orm":
            connection = self.connection()
            result = prepared.run(connection, statement, params)
            return connection.execute(statement, params) if result is None else result
        return super().execute(statement, params, **kw)


def configure_orm(db_url: str | None = None, *, pre_ping: bool = True) -> Engine:
    """(Re)create the engine and session factories for `db_url` (default: the configured URL); see
    `make_engine` for `pre_ping`."""
    global _engine, _session_factory, _read_session_factory, _core_session_factory, _statement_read_engine
    dispose_orm()
    _engine = make_engine(db_url or get_settings().db_url, pre_ping=pre_ping)
    _session_factory = sessionmaker(bind=_engine, expire_on_commit=False, autoflush=False)
    _core_session_factory = sessionmaker(
        bind=_engine, expire_on_commit=False, autoflush=False, class_=CoreSession
    )
    _read_session_factory = sessionmaker(
        bind=read_only_engine(_engine), expire_on_commit=False, autoflush=False
    )
    event.listen(_read_session_factory, "do_orm_execute", _refuse_writes)
    event.listen(_read_session_factory, "before_flush", _refuse_flush)
    _statement_read_engine = read_only_engine(_engine, each_statement=True)
    return _engine


def dispose_orm() -> None:
    global _engine, _session_factory, _read_session_factory, _core_session_factory, _statement_read_engine
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _session_factory = None
    _read_session_factory = None
    _core_session_factory = None
    _statement_read_engine = None


def get_engine() -> Engine:
    if _engine is None:
        return configure_orm()
    return _engine


def new_session(*, core: bool = False) -> Session:
    """A session; `core=True`: a `CoreSession` (Core statements skip the ORM's execution path)."""
    if _session_factory is None:
        configure_orm()
    factory = _core_session_factory if core else _session_factory
    assert factory is not None
    return factory()


def new_read_session() -> Session:
    """A session for work that only reads (see `create_read_session`)."""
    if _read_session_factory is None:
        configure_orm()
    assert _read_session_factory is not None
    return _read_session_factory()


class WriteInReadSession(RuntimeError):
    """A programming error: a read-only session was asked to change rows."""


def _refuse_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise WriteInReadSession("a read-only session cannot change rows; use create_session()")


def _refuse_flush(session: Session, *_: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise WriteInReadSession("a read-only session cannot change rows; use create_session()")


def is_postgresql(session: Session | None = None) -> bool:
    """Whether the metadata database (`session`'s, else the configured one) is PostgreSQL, where row
    locks (`FOR UPDATE`, `SKIP LOCKED`) are taken; SQLite has one writer at a time instead."""
    bind = session.get_bind() if session is not None else get_engine()
    return bind.dialect.name == "postgresql"


def is_sqlite() -> bool:
    return get_engine().dialect.name == "sqlite"


@contextmanager
def create_session(*, core: bool = False) -> Iterator[Session]:
    """A session that commits when the block succeeds, rolls back when it raises, and always closes;
    `core=True`: a `CoreSession`, for the scheduler loop's transactions."""
    session = new_session(core=core)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A Core connection that only reads, for a hot read that needs no ORM (the API's DAG list: a
    Session cost a tenth of that request). On SQLite it opens no transaction: each statement reads
    its own snapshot, so a read that must see one state of the tables is one statement."""
    if _statement_read_engine is None:
        configure_orm()
    assert _statement_read_engine is not None
    with _statement_read_engine.connect() as connection:
        yield connection


@contextmanager
def create_read_session() -> Iterator[Session]:
    """A session that only reads, for pages and API GETs: on SQLite its transaction takes no write
    lock, so readers never wait for the scheduler; a change through it raises `WriteInReadSession`."""
    session = new_read_session()
    try:
        yield session
    finally:
        session.close()


def provide_session(func: Callable[P, R]) -> Callable[P, R]:
    """Pass a fresh session (committed on return) unless the caller gave one, by position or by name."""
    signature = inspect.signature(func)
    if "session" not in signature.parameters:
        raise TypeError(f"{func.__qualname__} has no 'session' parameter for @provide_session")
    position = list(signature.parameters).index("session")

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        given = kwargs.get("session") is not None or (len(args) > position and args[position] is not None)
        if given:
            return func(*args, **kwargs)
        if len(args) > position:
            # The caller passed None positionally: replace it rather than pass `session` twice.
            with create_session() as session:
                new_args = (*args[:position], session, *args[position + 1 :])
                return func(*new_args, **kwargs)  # type: ignore[arg-type]
        with create_session() as session:
            kwargs["session"] = session
            return func(*args, **kwargs)

    return wrapper
