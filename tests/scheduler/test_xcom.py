"""XCom through real DAG files and the real scheduler: values pushed, pulled, listed, checked, cleared."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from minisched.db.session import create_session
from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_source, run_to_end, ti_states

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
