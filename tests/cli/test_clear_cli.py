"""`tasks clear`, `tasks test`, `dags backfill --reset-dagruns`: running tasks again, as an operator does."""

from __future__ import annotations

import json
import time
from typing import Any

from click.testing import Result
from sqlalchemy import func, select, update

from minisched.db.session import create_session
from minisched.models import DagRun, Job, Log, TaskInstance
from tests.conftest import Env

PIPELINE = """\
from datetime import datetime, timezone
from minisched import DAG, PythonOperator

def extract():
    print("extracting")

def load():
    print("loading")
    {load_body}

def report():
    print("reporting")

START = datetime(2024, 1, 1, tzinfo=timezone.utc)

with DAG("pipeline", schedule={schedule}, start_date=START, catchup=False):
    a = PythonOperator(task_id="extract", python_callable=extract)
    b = PythonOperator(task_id="load", python_callable=load, retries={retries})
    c = PythonOperator(task_id="report", python_callable=report)
    a >> b >> c
"""
RUN_1 = "manual__2024-01-01T00:00:00+00:00"
RUN_2 = "manual__2024-01-02T00:00:00+00:00"


def _write(env: Env, *, broken: bool = False, schedule: str = "None", retries: int = 0) -> None:
    body = 'raise RuntimeError("the warehouse is down")' if broken else "pass"
    env.write_dag("pipeline.py", PIPELINE.format(load_body=body, schedule=schedule, retries=retries))


def _states(run_id: str) -> dict[str, tuple[str | None, int, int]]:
    """task_id -> (state, try_number, max_tries)."""
    with create_session() as session:
        rows = session.execute(
            select(
                TaskInstance.task_id, TaskInstance.state, TaskInstance.try_number, TaskInstance.max_tries
            ).where(TaskInstance.dag_id == "pipeline", TaskInstance.run_id == run_id)
        )
        return {task_id: (state, tries, max_tries) for task_id, state, tries, max_tries in rows}


def _run_state(run_id: str) -> tuple[str, Any]:
    with create_session() as session:
        row = session.execute(select(DagRun.state, DagRun.end_date).where(DagRun.run_id == run_id)).one()
        return row.state, row.end_date


def _events(event: str) -> list[Any]:
    with create_session() as session:
        return list(session.execute(select(Log.task_id, Log.run_id, Log.extra).where(Log.event == event)))


def _one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(fragment in result.stderr for fragment in fragments), result.stderr


def _two_successful_runs(env: Env) -> None:
    _write(env)
    for day in ("2024-01-01", "2024-01-02"):
        assert env.run_cli("dags", "test", "pipeline", day).exit_code == 0


def test_a_failed_task_is_cleared_and_the_scheduler_runs_it_again(env: Env) -> None:
    _write(env, broken=True)
    assert env.run_cli("dags", "test", "pipeline", "2024-01-01").exit_code == 1
    assert _states(RUN_1) == {
        "extract": ("success", 1, 0),
        "load": ("failed", 1, 0),
        "report": ("upstream_failed", 0, 0),
    }
    _write(env, retries=1)  # the operator fixes the task (and allows it a retry)

    result = env.run_cli("tasks", "clear", "pipeline", "--only-failed", "-y")
    assert result.exit_code == 0, result.output
    assert "Cleared 2 task instance(s); 1 run(s) queued again" in result.stdout
    assert _states(RUN_1) == {"extract": ("success", 1, 0), "load": (None, 1, 2), "report": (None, 0, 0)}
    assert _run_state(RUN_1) == ("queued", None)
    assert sorted((task_id, run_id) for task_id, run_id, _ in _events("cleared")) == [
        ("load", RUN_1),
        ("report", RUN_1),
    ]
    [(_, _, extra)] = _events("cli_tasks_clear")
    assert json.loads(extra)["only_failed"] is True

    env.vars["MINISCHED_PARALLELISM"] = "2"
    deadline = time.monotonic() + 60
    while _run_state(RUN_1)[0] != "success":
        assert time.monotonic() < deadline, _states(RUN_1)
        proc = env.run_process("scheduler", "--num-runs", "40")
        assert proc.returncode == 0, proc.stderr
    assert _states(RUN_1) == {
        "extract": ("success", 1, 0),
        "load": ("success", 2, 2),
        "report": ("success", 1, 0),
    }
    logs = env.run_cli("tasks", "logs", "pipeline", RUN_1, "load")
    assert "try_number=2" in logs.stdout and "loading" in logs.stdout


def test_clear_shows_what_it_will_clear_and_asks_first(env: Env) -> None:
    _two_successful_runs(env)
    declined = env.run_cli("tasks", "clear", "pipeline", "--run-id", RUN_2, "-t", "^load$", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.stderr
    assert "Clear these 1 task instance(s)?" in declined.stdout
    assert RUN_2 in declined.stdout and "load" in declined.stdout
    assert _states(RUN_2)["load"] == ("success", 1, 0) and _events("cleared") == []

    accepted = env.run_cli("tasks", "clear", "pipeline", "--run-id", RUN_2, "-t", "^load$", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert _states(RUN_2)["load"] == (None, 1, 1)
    assert _states(RUN_2)["report"] == ("success", 1, 0)
    assert _states(RUN_1)["load"] == ("success", 1, 0)


def test_regex_date_range_and_downstream_pick_the_task_instances(env: Env) -> None:
    _two_successful_runs(env)
    result = env.run_cli(
        "tasks", "clear", "pipeline", "-t", "^ext", "-s", "2024-01-02", "-e", "2024-01-02", "-y"
    )
    assert result.exit_code == 0, result.output
    assert {t: s[0] for t, s in _states(RUN_2).items()} == {
        "extract": None,
        "load": "success",
        "report": "success",
    }
    assert _run_state(RUN_1)[0] == "success"

    result = env.run_cli(
        "tasks", "clear", "pipeline", "-t", "^load$", "--downstream", "-e", "2024-01-01", "-y"
    )
    assert result.exit_code == 0, result.output
    assert {t: s[0] for t, s in _states(RUN_1).items()} == {
        "extract": "success",
        "load": None,
        "report": None,
    }


def test_tries_in_flight_are_left_alone(env: Env) -> None:
    _two_successful_runs(env)
    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.run_id == RUN_1, TaskInstance.task_id == "load")
            .values(state="running")
        )
    result = env.run_cli("tasks", "clear", "pipeline", "--run-id", RUN_1, "-y")
    assert result.exit_code == 0, result.output
    assert f"not cleared, its try is running: {RUN_1} load" in result.stderr
    assert {t: s[0] for t, s in _states(RUN_1).items()} == {
        "extract": None,
        "load": "running",
        "report": None,
    }

    nothing = env.run_cli("tasks", "clear", "pipeline", "--run-id", RUN_2, "--only-failed", "-y")
    assert nothing.exit_code == 0 and nothing.stdout.strip() == "No task instances to clear"


def test_clear_errors_are_one_line(env: Env) -> None:
    _two_successful_runs(env)
    _one_line_error(env.run_cli("tasks", "clear", "nope", "-y"), "DAG 'nope' not found")
    _one_line_error(env.run_cli("tasks", "clear", "pipeline", "--run-id", "r", "-y"), "no run 'r'")
    _one_line_error(env.run_cli("tasks", "clear", "pipeline", "-t", "(", "-y"), "invalid --task-regex")
    _one_line_error(
        env.run_cli("tasks", "clear", "pipeline", "-t", "zzz", "-y"), "no task", "extract, load, report"
    )
    _one_line_error(env.run_cli("tasks", "clear", "pipeline", "-s", "someday", "-y"), "invalid --start-date")
    _one_line_error(
        env.run_cli("tasks", "clear", "pipeline", "-s", "2024-02-01", "-e", "2024-01-01", "-y"),
        "before --start-date",
    )
    assert _events("cleared") == [] and _events("cli_tasks_clear") == []


def _row_counts() -> tuple[int, ...]:
    with create_session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (DagRun, TaskInstance, Log, Job)
        )


def test_tasks_test_runs_one_task_and_records_nothing(env: Env) -> None:
    _write(env, broken=True)
    before = _row_counts()
    ok = env.run_cli("tasks", "test", "pipeline", "extract", "2024-03-01")
    assert ok.exit_code == 0, ok.output
    assert "extracting" in ok.stdout and "Task extract of pipeline: success" in ok.stderr
    failed = env.run_cli("tasks", "test", "pipeline", "load")
    assert failed.exit_code == 1
    assert "RuntimeError: the warehouse is down" in failed.stdout
    assert failed.stderr.strip().endswith("failed (RuntimeError: the warehouse is down)")
    assert _row_counts() == before
    _one_line_error(env.run_cli("tasks", "test", "pipeline", "nope"), "no task 'nope'", "extract")
    _one_line_error(env.run_cli("tasks", "test", "nope", "extract"), "'nope' is not defined")
    assert not list(env.logs_folder.rglob("*.log"))


def test_backfill_reset_dagruns_runs_finished_runs_again(env: Env) -> None:
    _write(env, schedule='"@daily"')
    backfill = ("dags", "backfill", "pipeline", "-s", "2024-01-01", "-e", "2024-01-02")
    first = env.run_process(*backfill)
    assert first.returncode == 0, first.stderr
    again = env.run_process(*backfill)
    assert again.returncode == 0 and again.stderr.count("already finished, not run again") == 2
    dry = env.run_cli(*backfill, "--reset-dagruns", "--dry-run")
    assert dry.exit_code == 0 and dry.stderr.count("would be reset") == 2
    assert _states("backfill__2024-01-01T00:00:00+00:00")["load"] == ("success", 1, 0)

    reset = env.run_process(*backfill, "--reset-dagruns", "-y")
    assert reset.returncode == 0, reset.stderr
    for day in ("2024-01-01", "2024-01-02"):
        run_id = f"backfill__{day}T00:00:00+00:00"
        assert f"{run_id}\tsuccess" in reset.stdout
        assert {t: s[:2] for t, s in _states(run_id).items()} == {
            "extract": ("success", 2),
            "load": ("success", 2),
            "report": ("success", 2),
        }
    [(_, _, extra), *_] = [e for e in _events("cli_dags_backfill") if json.loads(e.extra)["reset_dagruns"]]
    assert json.loads(extra)["start_date"] == "2024-01-01"
