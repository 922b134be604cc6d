"""XCom through real DAG files and the real scheduler: values pushed, pulled, listed, checked, cleared."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from minisched.db.session import create_session
from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    dag_source,
    finished_runs,
    run_to_end,
    task_instances,
    ti_states,
    wait_until,
)

DAG = """
from minisched import task

def pusher(ti):
    ti.xcom_push(key="manual", value={"by": "hand"})
    return "ret"

with DAG("flow", schedule=None, start_date=START) as dag:
    @task
    def extract():
        return {"rows": 3, "table": "users"}

    @task(multiple_outputs=True)
    def split():
        return {"a": 1, "b": [1, 2]}

    @task
    def combine(data, a, b, ti=None):
        return {
            "rows": data["rows"],
            "a": a,
            "b": b,
            "manual": ti.xcom_pull(task_ids="pusher", key="manual"),
            "both": ti.xcom_pull(task_ids=["extract", "pusher"]),
            "missing": ti.xcom_pull(task_ids="quiet"),
        }

    parts = split()
    manual = PythonOperator(task_id="pusher", python_callable=pusher)
    manual >> combine(extract(), parts["a"], parts["b"])
    BashOperator(task_id="bash", bash_command="echo first; echo last-line")
    PythonOperator(task_id="quiet", python_callable=lambda: 5, do_xcom_push=False)

    @task
    def not_json():
        return {1, 2}

    @task
    def too_big():
        return "x" * 5000

    not_json()
    too_big()

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def flaky(ti=None):
        ti.xcom_push(key=f"try_{ti.try_number}", value=ti.try_number)
        if ti.try_number == 1:
            raise RuntimeError("first try fails")
        return "second"

    flaky()
"""


def _values(env: Env, *args: str) -> dict[tuple[str, str], Any]:
    result = env.run_cli("tasks", "xcom", "flow", _run_id(), *args, "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert all(list(row) == ["task_id", "map_index", "key", "value", "timestamp"] for row in rows)
    assert all(row["map_index"] == -1 for row in rows)
    return {(row["task_id"], row["key"]): row["value"] for row in rows}


def _run_id() -> str:
    with create_session() as session:
        return str(session.execute(text("SELECT run_id FROM dag_run WHERE dag_id = 'flow'")).scalar_one())


@pytest.mark.slow
def test_values_flow_between_tasks_and_bad_values_fail_the_try(env: Env, procs: Procs) -> None:
    env.write_dag("flow.py", dag_source(DAG))
    for args in (("dags", "list"), ("dags", "trigger", "flow")):
        assert env.run_cli(*args).exit_code == 0

    run_to_end(procs, "flow", extra_env={"MINISCHED_XCOM_MAX_SIZE": "4000"})

    states = ti_states("flow")
    assert states == {
        "extract": "success",
        "split": "success",
        "pusher": "success",
        "combine": "success",
        "bash": "success",
        "quiet": "success",
        "not_json": "failed",
        "too_big": "failed",
        "flaky": "success",
    }
    values = _values(env)
    assert values[("combine", "return_value")] == {
        "rows": 3,
        "a": 1,
        "b": [1, 2],
        "manual": {"by": "hand"},
        "both": [{"rows": 3, "table": "users"}, "ret"],
        "missing": None,
    }
    assert (values[("split", "a")], values[("split", "b")]) == (1, [1, 2])
    assert values[("split", "return_value")] == {"a": 1, "b": [1, 2]}
    assert values[("bash", "return_value")] == "last-line"
    assert ("quiet", "return_value") not in values
    assert not any(task in ("not_json", "too_big") for task, _ in values)
    # The retry's values replaced the first try's.
    assert {key: value for (task, key), value in values.items() if task == "flaky"} == {
        "try_2": 2,
        "return_value": "second",
    }
    assert set(_values(env, "split")) == {("split", "a"), ("split", "b"), ("split", "return_value")}
    table = env.run_cli("tasks", "xcom", "flow", _run_id(), "split", "--output", "table").stdout.splitlines()
    rows = [[cell.strip() for cell in line.split("|")] for line in (table[0], *table[2:])]
    assert [row[:4] for row in rows] == [
        ["task_id", "map_index", "key", "value"],
        ["split", "-1", "a", "1"],
        ["split", "-1", "b", "[1, 2]"],
        ["split", "-1", "return_value", '{"a": 1, "b": [1, 2]}'],
    ], table

    errors = _errors()
    assert errors["not_json"] == (
        "task 'not_json': XCom value for key 'return_value' is not JSON-serializable (type set); "
        "return or push lists, dicts, strings, numbers, booleans or None"
    )
    assert (
        "task 'too_big': XCom value for key 'return_value' is 5,002 bytes, over the 4,000-byte cap"
        in (errors["too_big"])
    )

    cleared = env.run_cli("tasks", "clear", "flow", "--task-regex", "^(split|bash)$", "-y")
    assert cleared.exit_code == 0, cleared.output
    remaining = {task for task, _ in _values(env)}
    assert "split" not in remaining and "bash" not in remaining and "combine" in remaining


def _errors() -> dict[str, str]:
    with create_session() as session:
        rows = session.execute(
            text("SELECT task_id, extra FROM log WHERE dag_id = 'flow' AND event = 'failed'")
        )
        return {task_id: json.loads(extra)["error"] for task_id, extra in rows}


def test_xcom_command_needs_an_existing_run(env: Env) -> None:
    result = env.run_cli("tasks", "xcom", "flow", "nope")
    assert result.exit_code == 1 and "no run 'nope' of DAG 'flow'" in result.stderr


SMALL = """
from minisched import task

with DAG("small_flow", schedule=None, start_date=START) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def total(values):
        return sum(values)

    total(numbers())
"""


@pytest.mark.parametrize("executor", ["sequential", "in-process"])
def test_values_pass_with_every_executor(env: Env, procs: Procs, executor: str) -> None:
    env.write_dag("small.py", dag_source(SMALL))
    if executor == "in-process":
        assert env.run_cli("dags", "test", "small_flow").exit_code == 0
    else:
        assert env.run_cli("dags", "list").exit_code == 0
        assert env.run_cli("dags", "trigger", "small_flow").exit_code == 0
        run_to_end(procs, "small_flow", extra_env={"MINISCHED_EXECUTOR": executor})
    with create_session() as session:
        rows = session.execute(
            text("SELECT task_id, value FROM xcom WHERE dag_id = 'small_flow' ORDER BY task_id")
        )
        assert [
            (task_id, json.loads(value) if isinstance(value, str) else value) for task_id, value in rows
        ] == [
            ("numbers", [1, 2, 3]),
            ("total", 6),
        ]


RECOVERED = """
from minisched import task

with DAG("recovered", schedule=None, start_date=START) as dag:
    @task
    def produce():
        Path({started!r}).touch()
        for _ in range(2400):  # until the test has stopped the scheduler (at most 2 minutes)
            if Path({go!r}).exists():
                return {{"n": 42, "tag": "made before the crash"}}
            time.sleep(0.05)
        raise RuntimeError("the test never said go")

    @task
    def consume(value):
        Path({received!r}).write_text(json.dumps(value))

    consume(produce())
"""


def test_values_of_a_try_that_ended_while_its_scheduler_died_reach_the_downstream(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    """The try ends while its scheduler is stopped (so its result is never recorded), the scheduler is
    SIGKILLed, and the next one recovers the try from its record: outcome and value."""
    from minisched.scheduler.executors.logs import log_path_for, read_try_record

    started, go, received = tmp_path / "started", tmp_path / "go", tmp_path / "received.json"
    source = RECOVERED.format(started=str(started), go=str(go), received=str(received))
    env.write_dag("recovered.py", dag_source(source, imports="import json"))
    for args in (("dags", "list"), ("dags", "trigger", "recovered")):
        assert env.run_cli(*args).exit_code == 0
    # A lease far longer than the pause below: the try is not cut short while the scheduler is stopped.
    zombie = {"MINISCHED_ZOMBIE_THRESHOLD": "60"}
    first = procs.scheduler(extra_env=zombie)
    wait_until(started.exists, message="produce to start")
    # The scheduler records a start with the try's result, or an idle sleep after the try began: once
    # it has, it is waiting for the result, not inside a transaction (a scheduler stopped while it
    # holds SQLite's write lock would block this test's own reads).
    wait_until(lambda: ti_states("recovered")["produce"] == "running", message="produce's start recorded")
    os.kill(first.pid, signal.SIGSTOP)  # from here on it records nothing
    go.touch()
    [produce] = [ti for ti in task_instances("recovered") if ti.task_id == "produce"]
    record_path = log_path_for(env.logs_folder, "recovered", produce.run_id, "produce", produce.try_number)
    record = wait_until(
        lambda: (read_try_record(record_path) or {}).get("outcome") and read_try_record(record_path),
        message="produce's try to end",
    )
    assert record["outcome"] == "success" and record["xcom"] == [
        ["return_value", {"n": 42, "tag": "made before the crash"}]
    ]
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    # Its result was never recorded.
    assert ti_states("recovered")["produce"] == "running"

    second = procs.scheduler(extra_env=zombie)
    wait_until(lambda: finished_runs("recovered"), timeout=120, message="the run to end")
    assert second.stop() == 0, second.output()
    assert ti_states("recovered") == {"produce": "success", "consume": "success"}
    assert json.loads(received.read_text()) == {"n": 42, "tag": "made before the crash"}
    [after] = [ti for ti in task_instances("recovered") if ti.task_id == "produce"]
    assert after.try_number == 1  # recorded as it ended, not run again
    assert "the try had ended success, as recorded" in record_path.with_suffix(".log").read_text()
    listed = env.run_cli("tasks", "xcom", "recovered", produce.run_id, "produce", "-o", "json")
    assert [(row["key"], row["value"]) for row in json.loads(listed.stdout)] == [
        ("return_value", {"n": 42, "tag": "made before the crash"})
    ]


RETRIED = """
from minisched import task

with DAG("retried", schedule=None, start_date=START) as dag:
    @task(retries=1, retry_delay=timedelta(0))
    def flaky(ti=None):
        if ti.try_number == 1:
            ti.xcom_push(key="partial", value="from the failed try")
            raise RuntimeError("first try fails")
        # What a downstream (or this retry) reads from the table while the retry runs.
        seen = ti.xcom_pull(task_ids="flaky", key="partial")
        Path({seen!r}).write_text(json.dumps(seen))
        return "second"

    flaky()
"""


@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_a_failed_trys_values_are_gone_once_its_retry_runs(
    env: Env, procs: Procs, tmp_path: Path, executor: str
) -> None:
    seen = tmp_path / "seen.json"
    env.write_dag("retried.py", dag_source(RETRIED.format(seen=str(seen)), imports="import json"))
    for args in (("dags", "list"), ("dags", "trigger", "retried")):
        assert env.run_cli(*args).exit_code == 0
    run_to_end(procs, "retried", extra_env={"MINISCHED_EXECUTOR": executor})
    assert ti_states("retried") == {"flaky": "success"}
    assert json.loads(seen.read_text()) is None
    with create_session() as session:
        rows = session.execute(text("SELECT key FROM xcom WHERE dag_id = 'retried'")).scalars().all()
    assert rows == ["return_value"]
