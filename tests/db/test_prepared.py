"""The scheduler loop's statements run straight on SQLite's cursor (`db.prepared`, through a
`create_session(core=True)` session) read and write exactly what SQLAlchemy's own path does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.conftest import Env
from tests.sql_statements import recorded_statements

NOW = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _both_ways(work: Callable[[Any], Any]) -> tuple[Any, Any]:
    """`work(session)` in a core session (direct path on SQLite), then in a plain one (SQLAlchemy's),
    each rolled back so both see the same rows."""
    from minisched.db.session import new_session

    results = []
    for core in (True, False):
        session = new_session(core=core)
        try:
            results.append(work(session))
        finally:
            session.rollback()
            session.close()
    return results[0], results[1]


def _seed(env: Env) -> None:
    from sqlalchemy import insert

    from minisched.db.session import create_session
    from minisched.models import DagModel, DagRun, TaskInstance

    with create_session() as session:
        session.execute(insert(DagModel), [{"dag_id": "d", "fileloc": "/x.py", "max_active_tasks": 5}])
        session.execute(
            insert(DagRun),
            [
                {
                    "dag_id": "d",
                    "run_id": "r",
                    "run_type": "manual",
                    "state": "running",
                    "logical_date": NOW,
                    "conf": {"a": [1, 2]},
                }
            ],
        )
        session.execute(
            insert(TaskInstance),
            [
                {"dag_id": "d", "run_id": "r", "task_id": f"t{i}", "state": "scheduled", "try_number": i}
                for i in range(3)
            ],
        )


def test_reads_match_sqlalchemy_datetimes_json_and_tuple_in(env: Env) -> None:
    from minisched.scheduler import statements as sql

    _seed(env)
    candidates = sql.candidates(False, False, True, False)
    params = {"limit": 10, "open_pools": ["default_pool"]}
    direct, through = _both_ways(lambda s: [tuple(row) for row in s.execute(candidates, params).all()])
    assert direct == through and len(direct) == 3
    assert direct[0][11] == NOW and direct[0][14] == {"a": [1, 2]}  # logical_date aware, conf parsed
    tis = {"tis": [("d", "r", "t1"), ("d", "r", "t2")]}
    statement = sql.task_instances(False, True)
    direct, through = _both_ways(lambda s: sorted(tuple(r) for r in s.execute(statement, tis)))
    assert direct == through and [row[3] for row in direct] == ["t1", "t2"]


def test_writes_match_sqlalchemy_returning_executemany_rowcount(env: Env) -> None:
    from sqlalchemy import text

    from minisched.scheduler import statements as sql

    _seed(env)

    def claim_and_finish(session: Any) -> tuple[Any, ...]:
        ids = [
            row[0] for row in session.execute(text("SELECT id, try_number FROM task_instance ORDER BY id"))
        ]
        tries = [(ids[0], 0), (ids[1], 1), (ids[2], 99)]  # the last one's try number is stale
        won = sorted(session.execute(sql.CLAIM, {"tries": tries, "job_id": 7, "now": NOW}).all())
        rows = [
            {
                "b_id": ti_id,
                "b_try": number,
                "b_job": 7,
                "b_state": "success",
                "b_start": NOW,
                "b_end": NOW + timedelta(seconds=1),
                "b_duration": 1.0,
                "b_host": "h",
                "b_pid": 1,
                "b_retry_at": None,
            }
            for ti_id, number in won
        ]
        finished = session.execute(sql.FINISH, rows).rowcount
        stored = session.execute(
            text("SELECT state, try_number, queued_dttm, end_date FROM task_instance ORDER BY id")
        ).all()
        beat = session.execute(sql.HEARTBEAT, {"job_id": 12345, "now": NOW}).rowcount
        return [tuple(r) for r in won], finished, [tuple(r) for r in stored], beat

    direct, through = _both_ways(claim_and_finish)
    assert direct == through
    won, finished, stored, beat = direct
    assert len(won) == 2 and finished == 2 and beat == 0  # no such job: the fencing sees 0 rows
    assert [row[0] for row in stored] == ["success", "success", "scheduled"]


def test_cursor_events_and_driver_errors_as_sqlalchemy_raises_them(env: Env) -> None:
    from minisched.db.audit import event_row
    from minisched.db.session import create_session
    from minisched.scheduler import statements as sql

    with recorded_statements() as statements, create_session(core=True) as session:
        session.execute(sql.POOLS_AND_OCCUPANCY).all()
    # SQLite's BEGIN IMMEDIATE is sent by the engine (psycopg begins by itself, unseen)
    expected = ["BEGIN IMMEDIATE"] if env.db.backend == "sqlite" else []
    assert [s.split()[0] + (" IMMEDIATE" if "IMMEDIATE" in s else "") for s in statements] == [
        *expected,
        "SELECT",
    ]

    row = {**event_row("x"), "id": 1}
    with pytest.raises(IntegrityError) as raised, create_session(core=True) as session:
        from sqlalchemy import insert

        from minisched.models import Log, table_of

        session.execute(insert(table_of(Log)), [row, row])  # the same primary key twice
    assert isinstance(raised.value, DBAPIError) and "unique" in str(raised.value.orig).lower()
