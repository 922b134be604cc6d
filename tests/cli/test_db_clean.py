"""`minisched db clean`: old history goes, in batches; anything still queued or running stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import ColumnElement, func, insert, select, update

from minisched.db.session import create_session
from minisched.models import Base, DagRun, ImportError_, Job, Log, TaskInstance, XCom
from tests.conftest import Env

DAG = """\
from datetime import datetime, timezone
from minisched import DAG, BashOperator

with DAG("nightly", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    BashOperator(task_id="only", bash_command="true")
"""
OLD = datetime(2023, 1, 1, tzinfo=UTC)
BEFORE = "2024-01-01"
OLD_RUN = "manual__2025-01-01T00:00:00+00:00"
RECENT_RUN = "manual__2025-01-02T00:00:00+00:00"
RUNNING_RUN = "manual__2025-01-03T00:00:00+00:00"
SCHEDULED = ["manual__2025-02-01T00:00:00+00:00", "manual__2025-02-02T00:00:00+00:00"]


def _set(model: type[Base], where: ColumnElement[bool], **values: object) -> int:
    with create_session() as session:
        result = session.execute(update(model).where(where).values(**values))
        return int(getattr(result, "rowcount", 0))


def _count(model: type[Base], *where: ColumnElement[bool]) -> int:
    with create_session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _run_ids() -> list[str]:
    with create_session() as session:
        return sorted(session.scalars(select(DagRun.run_id)))


@pytest.fixture
def history(env: Env) -> dict[str, int]:
    """Old and recent runs, log rows, import errors and jobs; returns how many of each are old."""
    env.write_dag("nightly.py", DAG)
    for day in ("2025-01-01", "2025-01-02"):
        assert env.run_cli("dags", "test", "nightly", day).exit_code == 0
    for logical_date in ("2025-01-03", "2025-02-01", "2025-02-02"):
        assert env.run_cli("dags", "trigger", "nightly", "--logical-date", logical_date).exit_code == 0
    _set(DagRun, DagRun.run_id == OLD_RUN, end_date=OLD)
    _set(DagRun, DagRun.run_id == RUNNING_RUN, state="running", start_date=OLD)
    # Made by `dags trigger`, relabelled as the scheduler's own (only run_type matters here).
    _set(DagRun, DagRun.run_id.in_(SCHEDULED), run_type="scheduled", state="success", end_date=OLD)
    with create_session() as session:
        session.execute(
            insert(XCom),
            [
                {
                    "dag_id": "nightly",
                    "run_id": run_id,
                    "task_id": "only",
                    "key": "return_value",
                    "value": 1,
                    "timestamp": OLD,
                }
                for run_id in (OLD_RUN, RECENT_RUN)
            ],
        )
        session.execute(
            insert(ImportError_),
            [
                {"filename": "/old.py", "stacktrace": "boom", "timestamp": OLD},
                {"filename": "/new.py", "stacktrace": "boom", "timestamp": datetime.now(UTC)},
            ],
        )
        session.execute(
            insert(Job),
            [
                {
                    "job_type": "scheduler",
                    "state": "running",
                    "hostname": "h",
                    "pid": 1,
                    "start_date": OLD,
                    "latest_heartbeat": OLD,
                }
            ],
        )
    old_logs = _set(Log, Log.run_id == OLD_RUN, dttm=OLD)
    old_jobs = _set(Job, Job.state != "running", latest_heartbeat=OLD)
    assert old_logs and old_jobs
    # The older scheduled run goes; the latest scheduled run of a DAG always stays.
    return {"dag_run": 2, "task_instance": 2, "log": old_logs, "import_error": 1, "job": old_jobs}


def _json(result: object) -> dict[str, int]:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    rows = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert all(set(row) == {"table", "rows"} for row in rows)
    return {row["table"]: row["rows"] for row in rows}


def test_dry_run_counts_per_table_and_deletes_nothing(env: Env, history: dict[str, int]) -> None:
    runs_before, logs_before = _run_ids(), _count(Log)
    assert _json(env.run_cli("db", "clean", "--before", BEFORE, "--dry-run", "-o", "json")) == history
    table = env.run_cli("db", "clean", "--before", BEFORE, "--dry-run")
    assert table.exit_code == 0 and [
        line.split("|")[0].strip() for line in table.stdout.splitlines()[2:]
    ] == list(history)
    assert _run_ids() == runs_before and _count(Log) == logs_before


def test_clean_deletes_old_finished_history_in_batches_and_keeps_running_runs(
    env: Env, history: dict[str, int]
) -> None:
    result = env.run_cli("db", "clean", "--before", BEFORE, "-y", "--batch-size", "1", "-o", "json")
    assert _json(result) == history
    assert _run_ids() == sorted([RECENT_RUN, RUNNING_RUN, SCHEDULED[1]])
    assert _count(TaskInstance, TaskInstance.run_id.in_([OLD_RUN, SCHEDULED[0]])) == 0  # cascaded
    assert _count(TaskInstance) == 3
    assert _count(XCom, XCom.run_id == OLD_RUN) == 0 and _count(XCom, XCom.run_id == RECENT_RUN) == 1
    assert _count(Log, Log.dttm < OLD.replace(year=2024)) == 0 and _count(Log, Log.run_id == RECENT_RUN) > 0
    assert _count(ImportError_) == 1 and _count(Job, Job.state == "running") == 1
    with create_session() as session:
        extra = json.loads(session.scalar(select(Log.extra).where(Log.event == "cli_db_clean")) or "{}")
    assert extra["before"] == "2024-01-01T00:00:00+00:00" and extra["deleted"] == history
    again = env.run_cli("db", "clean", "--before", BEFORE, "-y")
    assert again.exit_code == 0 and "Nothing older than" in again.stderr


def test_tables_option_and_confirmation(env: Env, history: dict[str, int]) -> None:
    runs_before = _run_ids()
    declined = env.run_cli("db", "clean", "--before", BEFORE, input="n\n")
    assert declined.exit_code == 1 and "Delete these rows" in declined.stderr and declined.stdout == ""
    assert _count(Log, Log.dttm < OLD.replace(year=2024)) == history["log"]
    accepted = env.run_cli("db", "clean", "--before", BEFORE, "--tables", "log,job", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert _count(Log, Log.dttm < OLD.replace(year=2024)) == 0 and _run_ids() == runs_before
    assert _count(ImportError_) == 2


def test_clean_errors(env: Env) -> None:
    bad_table = env.run_cli("db", "clean", "--before", BEFORE, "--tables", "task_instance")
    assert bad_table.exit_code == 2 and "go with their dag_run" in bad_table.stderr
    bad_date = env.run_cli("db", "clean", "--before", "last week", "-y")
    assert bad_date.exit_code == 1 and "Traceback" not in bad_date.stderr
    assert bad_date.stderr.strip().splitlines() == [
        "Error: invalid --before 'last week': use ISO-8601, e.g. 2024-01-31 or 2024-01-31T06:00:00+00:00"
    ]
    assert env.run_cli("db", "clean").exit_code == 2
