"""`dags test`, `dags trigger`, `dags list-runs`, `tasks states-for-dag-run`, `tasks logs`; their errors."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, dag_source, log_rows, run_to_end, task_instances

RUN_KEYS = ["dag_id", "run_id", "run_type", "state", "logical_date", "start_date", "end_date"]
TASK_KEYS = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration"]

DAGS = textwrap.dedent(
    """
    def hello(conf, try_number):
        print(f"hello conf={conf} try={try_number}")
        if (conf or {}).get("fail_first") and try_number == 1:
            raise RuntimeError("first try fails")

    def fail():
        raise ValueError("this task always fails")

    with DAG("good", schedule=None, start_date=START):
        PythonOperator(task_id="hello", python_callable=hello, retries=1, retry_delay=timedelta(0)) >> (
            BashOperator(task_id="bye", bash_command="echo bye $MINISCHED_RUN_ID"))

    with DAG("broken", schedule=None, start_date=START):
        PythonOperator(task_id="ok", python_callable=lambda: None) >> PythonOperator(
            task_id="fails", python_callable=fail)
    """
)


def test_dags_test_runs_and_records_one_run(env: Env) -> None:
    env.write_dag("dags.py", dag_source(DAGS))

    ok = env.run_process("dags", "test", "good", "2024-03-01", "--output", "json")
    assert ok.returncode == 0, ok.stderr
    assert {row["task_id"]: row["state"] for row in json.loads(ok.stdout)} == {
        "hello": "success",
        "bye": "success",
    }
    [run] = dag_runs("good")
    assert (run.run_id, run.state) == ("manual__2024-03-01T00:00:00+00:00", "success")
    assert run.logical_date == datetime(2024, 3, 1, tzinfo=UTC)
    assert {ti.task_id: (ti.state, ti.try_number) for ti in task_instances("good")} == {
        "hello": ("success", 1),
        "bye": ("success", 1),
    }
    bye_log = env.logs_folder / "dag_id=good" / f"run_id={run.run_id}" / "task_id=bye" / "attempt=1.log"
    assert f"bye {run.run_id}" in bye_log.read_text()
    assert {row.event for row in log_rows("good", task_id="bye")} >= {"queued", "running", "success"}

    failed = env.run_process("dags", "test", "broken", "2024-03-01")
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    [run] = dag_runs("broken")
    assert run.state == "failed"
    assert {ti.task_id: ti.state for ti in task_instances("broken")} == {"ok": "success", "fails": "failed"}
    log = env.logs_folder / "dag_id=broken" / f"run_id={run.run_id}" / "task_id=fails" / "attempt=1.log"
    assert "ValueError: this task always fails" in log.read_text()

    # `dags test` again at the same date replaces the run (as Airflow's) and still exits by its result.
    again = env.run_process("dags", "test", "good", "2024-03-01")
    assert again.returncode == 0, again.stderr
    assert len(dag_runs("good")) == 1


def test_trigger_list_runs_states_and_logs(env: Env, procs: Procs) -> None:
    env.write_dag("dags.py", dag_source(DAGS))
    assert env.run_cli("dags", "list").exit_code == 0
    trigger = env.run_cli(
        "dags",
        "trigger",
        "good",
        "--logical-date",
        "2024-05-01T12:00:00+00:00",
        "--conf",
        '{"fail_first": true}',
    )
    assert trigger.exit_code == 0, trigger.output
    run_id = trigger.stdout.strip()
    assert run_id == "manual__2024-05-01T12:00:00+00:00"
    [queued] = dag_runs("good")
    assert (queued.state, queued.run_type, queued.conf) == ("queued", "manual", {"fail_first": True})
    assert [row.event for row in log_rows("good", event="cli_dags_trigger")] == ["cli_dags_trigger"]

    run_to_end(procs, "good")

    listed = env.run_cli("dags", "list-runs", "good", "--output", "json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert list(row) == RUN_KEYS
    assert row["dag_id"] == "good" and row["run_id"] == run_id and row["run_type"] == "manual"
    assert row["state"] == "success"
    assert datetime.fromisoformat(row["logical_date"]) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert datetime.fromisoformat(row["end_date"]) >= datetime.fromisoformat(row["start_date"])

    states = env.run_cli("tasks", "states-for-dag-run", "good", run_id, "--output", "json")
    assert states.exit_code == 0, states.output
    rows = json.loads(states.stdout)
    assert all(list(item) == TASK_KEYS for item in rows)
    by_task = {item["task_id"]: item for item in rows}
    assert (by_task["hello"]["state"], by_task["hello"]["try_number"]) == ("success", 2)
    assert (by_task["bye"]["state"], by_task["bye"]["try_number"]) == ("success", 1)
    assert isinstance(by_task["hello"]["duration"], float)
    table = env.run_cli("tasks", "states-for-dag-run", "good", run_id)
    assert table.exit_code == 0 and "hello" in table.stdout and "success" in table.stdout

    latest = env.run_cli("tasks", "logs", "good", run_id, "hello")
    assert latest.exit_code == 0, latest.output
    assert "try=2" in latest.stdout and "first try fails" not in latest.stdout
    first = env.run_cli("tasks", "logs", "good", run_id, "hello", "--try", "1")
    assert first.exit_code == 0, first.output
    assert "try=1" in first.stdout and "RuntimeError: first try fails" in first.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["dags", "trigger", "no_such_dag"],
        ["dags", "trigger", "good", "--conf", "{not json"],
        ["dags", "trigger", "good", "--conf", "[1, 2]"],
        ["dags", "trigger", "good", "--logical-date", "yesterday-ish"],
        ["dags", "trigger", "good", "--logical-date", "2024-06-01T00:00:00+00:00"],  # taken (see below)
        ["dags", "list-runs", "no_such_dag"],
        ["dags", "test", "no_such_dag"],
        ["tasks", "states-for-dag-run", "good", "no_such_run"],
        ["tasks", "logs", "good", "no_such_run", "hello"],
        ["tasks", "logs", "good", "manual__2024-06-01T00:00:00+00:00", "hello", "--try", "5"],
    ],
    ids=lambda args: "-".join(args[:2]) + "-" + (args[-1] if len(args) > 2 else ""),
)
def test_run_commands_fail_with_one_line(env: Env, args: list[str]) -> None:
    env.write_dag("dags.py", dag_source(DAGS))
    assert env.run_cli("dags", "list").exit_code == 0
    taken = env.run_cli("dags", "trigger", "good", "--logical-date", "2024-06-01")
    assert taken.exit_code == 0 and taken.stdout.strip() == "manual__2024-06-01T00:00:00+00:00"

    result = env.run_cli(*args)

    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and "unexpected" not in lines[0], lines[0]
    assert result.stdout == ""
    assert len(dag_runs("good")) == 1  # nothing was created by the failing command


def test_errors_from_a_real_process_have_no_traceback(env: Env, tmp_path: Path) -> None:
    env.write_dag("dags.py", dag_source(DAGS))
    result = env.run_process("dags", "trigger", "no_such_dag")
    assert result.returncode == 1
    assert (
        result.stderr.strip().count("\n") == 0
        and "not found" in result.stderr
        and "Traceback" not in result.stderr
    )


MEDDLING = textwrap.dedent(
    """
    import logging, os, sys

    def meddle():
        print("meddle's own line")
        sys.stdout = sys.stderr = open(os.devnull, "w")
        logging.getLogger().handlers = []
        logging.getLogger().setLevel(logging.ERROR)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    def speak():
        print("printed by speak")
        logging.getLogger("speak").info("logged by speak")
        os.system("echo echoed by speak")

    with DAG("meddling", schedule=None, start_date=START):
        # Not chained: both tries are handed over in one batch, meddle's first.
        PythonOperator(task_id="meddle", python_callable=meddle)
        PythonOperator(task_id="speak", python_callable=speak)
    """
)


def test_dags_test_puts_back_what_a_try_redirected(env: Env) -> None:
    """`dags test` points fds 1/2, sys.stdout and logging at the capture once for all its tries: what
    one task changes of them is undone before the next, whose output still reaches its own log."""
    env.write_dag("meddling.py", dag_source(MEDDLING))
    done = env.run_process("dags", "test", "meddling", "2024-03-01")
    assert done.returncode == 0, done.stderr
    [run] = dag_runs("meddling")
    folder = env.logs_folder / "dag_id=meddling" / f"run_id={run.run_id}"
    assert "meddle's own line" in (folder / "task_id=meddle" / "attempt=1.log").read_text()
    speak = (folder / "task_id=speak" / "attempt=1.log").read_text()
    for line in ("printed by speak", "logged by speak", "echoed by speak"):
        assert line in speak
    assert "meddle's own line" not in speak
    assert "by speak" not in done.stdout + done.stderr


ASYNC_TASK = textwrap.dedent(
    """
    import asyncio
    from importlib import metadata

    async def answer():
        await asyncio.sleep(0)
        return 42

    def uses_asyncio():
        print(f"asyncio says {asyncio.run(answer())}; click {metadata.version('click')}")

    with DAG("async_task", schedule=None, start_date=START):
        PythonOperator(task_id="uses_asyncio", python_callable=uses_asyncio)
    """
)


def test_dags_test_task_imports_a_deferred_module(env: Env) -> None:
    """`dags test` defers asyncio and importlib.metadata (SQLAlchemy imports them, the command does not
    use them): a task that does use them gets the real modules."""
    env.write_dag("async_task.py", dag_source(ASYNC_TASK))
    done = env.run_process("dags", "test", "async_task", "2024-03-01")
    assert done.returncode == 0, done.stderr
    [run] = dag_runs("async_task")
    log = (
        env.logs_folder
        / "dag_id=async_task"
        / f"run_id={run.run_id}"
        / "task_id=uses_asyncio"
        / "attempt=1.log"
    )
    assert "asyncio says 42; click " in log.read_text()
