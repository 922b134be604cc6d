"""Transient errors are retried by one helper; several processes share one SQLite file without 'locked'."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from minisched.db.engine import make_engine
from minisched.db.retry import is_transient, run_with_retries


class _Locked(Exception):
    pass


def _operational(message: str) -> OperationalError:
    return OperationalError("UPDATE x", {}, _Locked(message))


def test_transient_errors_are_retried_until_success() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _operational("database is locked")
        return "done"

    assert run_with_retries(flaky, base_delay=0.001) == "done"
    assert len(calls) == 3


def test_permanent_errors_are_not_retried() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise _operational("no such table: dag")

    with pytest.raises(OperationalError):
        run_with_retries(broken, base_delay=0.001)
    assert len(calls) == 1
    assert not is_transient(ValueError("x"))


def test_retries_are_bounded() -> None:
    calls = []

    def always_locked() -> None:
        calls.append(1)
        raise _operational("database is locked")

    with pytest.raises(OperationalError):
        run_with_retries(always_locked, attempts=4, base_delay=0.001)
    assert len(calls) == 4


WRITER = textwrap.dedent(
    """
    import sys
    from sqlalchemy import text
    from minisched.db.engine import make_engine

    engine = make_engine(sys.argv[1])
    for i in range(200):
        with engine.begin() as connection:
            value = connection.execute(text("SELECT n FROM counter")).scalar_one()
            connection.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
    engine.dispose()
    """
)


def test_concurrent_sqlite_writers_never_see_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [process.communicate(timeout=180)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, errors
    with engine.connect() as connection:
        # Read-modify-write under BEGIN IMMEDIATE is serialized: no lost updates either.
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 800
    engine.dispose()
