"""create_session / provide_session: commit, rollback, close, and reuse of the caller's session."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minisched.db.session import NEW_SESSION, create_session, get_engine, provide_session
from minisched.models import Pool
from tests.conftest import Env


def _pool_count() -> int:
    with create_session() as session:
        return session.scalar(select(func.count()).select_from(Pool)) or 0


def test_create_session_commits_on_success(env: Env) -> None:
    with create_session() as session:
        session.add(Pool(pool="p1", slots=3))
    assert _pool_count() == 2


def test_create_session_rolls_back_on_error(env: Env) -> None:
    with pytest.raises(RuntimeError), create_session() as session:
        session.add(Pool(pool="p1", slots=3))
        session.flush()
        raise RuntimeError("boom")
    assert _pool_count() == 1


def test_create_session_always_closes(env: Env) -> None:
    with pytest.raises(RuntimeError), create_session() as session:
        session.execute(select(1))
        raise RuntimeError("boom")
    assert get_engine().pool.checkedout() == 0  # type: ignore[attr-defined]


@provide_session
def add_pool(name: str, slots: int, session: Session = NEW_SESSION) -> Session:
    session.add(Pool(pool=name, slots=slots))
    session.flush()
    return session


def test_provide_session_creates_and_commits_when_none_given(env: Env) -> None:
    used = add_pool("fresh", 1)
    assert isinstance(used, Session)
    assert _pool_count() == 2


@pytest.mark.parametrize("style", ["keyword", "positional"])
def test_provide_session_reuses_callers_session_in_one_transaction(env: Env, style: str) -> None:
    with pytest.raises(RuntimeError), create_session() as session:
        used = add_pool("a", 1, session=session) if style == "keyword" else add_pool("b", 1, session)
        assert used is session
        raise RuntimeError("roll the whole transaction back")
    assert _pool_count() == 1


def test_provide_session_requires_a_session_parameter() -> None:
    with pytest.raises(TypeError, match="no 'session' parameter"):

        @provide_session
        def no_session(x: int) -> int:
            return x


def test_a_read_session_reads_while_a_writer_holds_the_lock_and_refuses_to_write(env: Env) -> None:
    """API GETs and pages read through it: they never wait for the scheduler's write transaction."""
    from sqlalchemy import update

    from minisched.db.session import WriteInReadSession, create_read_session

    with create_session() as writer:
        writer.add(Pool(pool="held", slots=1))
        writer.flush()  # holds SQLite's write lock (BEGIN IMMEDIATE) / the new row's lock until commit
        with create_read_session() as reader:
            assert reader.scalar(select(func.count()).select_from(Pool)) == 1  # not the uncommitted row
            with pytest.raises(WriteInReadSession):
                reader.execute(update(Pool).values(slots=5))
            reader.add(Pool(pool="sneaked", slots=1))
            with pytest.raises(WriteInReadSession):
                reader.flush()
    assert _pool_count() == 2
    assert get_engine().pool.checkedout() == 0  # type: ignore[attr-defined]


def test_datetimes_read_back_aware_in_utc_whatever_text_was_stored(env: Env) -> None:
    """SQLite's stored text is parsed by a fast path (issue 13); text written by another tool, with
    an offset or without microseconds, still reads as the same instant in UTC."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from minisched.models import Log

    stored = {
        "offset": ("2024-01-01 01:30:00+01:00", datetime(2024, 1, 1, 0, 30, tzinfo=UTC)),
        "offset_micro": ("2024-01-01T00:00:00.25-02:00", datetime(2024, 1, 1, 2, 0, 0, 250000, tzinfo=UTC)),
    }
    if get_engine().dialect.name == "sqlite":  # naive text is UTC there; PostgreSQL reads it in its timezone
        stored["naive"] = ("2024-01-01 00:00:00", datetime(2024, 1, 1, tzinfo=UTC))
        stored["naive_micro"] = ("2024-01-01 00:00:00.000123", datetime(2024, 1, 1, 0, 0, 0, 123, tzinfo=UTC))
    with create_session() as session:
        for event, (value, _) in stored.items():
            session.execute(
                text("INSERT INTO log (dttm, event) VALUES (:dttm, :event)"), {"dttm": value, "event": event}
            )
    with create_session() as session:
        read = dict(session.execute(select(Log.event, Log.dttm)).all())
    for event, (_, expected) in stored.items():
        assert read[event] == expected and read[event].utcoffset() == UTC.utcoffset(None), event
