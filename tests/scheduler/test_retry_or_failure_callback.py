"""A failing try calls `on_retry_callback` when the scheduler will retry it, else
`on_failure_callback`: the worker decides with the task instance's `max_tries`, which a clear raises
past the task's `retries` (so after a clear, try 3 of a task with `retries=1` is retried)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_source, run_to_end, task_instances


def callback_kinds_dag(calls: Path) -> str:
    """DAG `kinds`: one task that always fails, retries=1, writing `<kind> <try>` per callback."""
    return dag_source(
        textwrap.dedent(
            f"""
            def record(kind):
                def callback(context):
                    with open({str(calls)!r}, "a") as out:
                        out.write(f"{{kind}} {{context['ti'].try_number}}\\n")
                return callback

            def boom():
                raise ValueError("always")

            with DAG("kinds", schedule=None, start_date=START):
                PythonOperator(
                    task_id="always_fails",
                    python_callable=boom,
                    retries=1,
                    retry_delay=timedelta(0),
                    on_retry_callback=record("retry"),
                    on_failure_callback=record("failure"),
                )
            """
        )
    )


def calls_made(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_retry_then_failure_and_again_after_a_clear(env: Env, procs: Procs, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env.write_dag("kinds.py", callback_kinds_dag(calls))
    assert env.run_cli("dags", "list").exit_code == 0
    assert env.run_cli("dags", "trigger", "kinds").exit_code == 0
    [run] = run_to_end(procs, "kinds")
    assert run.state == "failed"
    assert calls_made(calls) == ["retry 1", "failure 2"]

    cleared = env.run_cli("tasks", "clear", "kinds", "-y")
    assert cleared.exit_code == 0, cleared.output
    [ti] = task_instances("kinds")
    assert ti.max_tries == 3  # try_number 2 + retries 1
    [run] = run_to_end(procs, "kinds")
    assert run.state == "failed"
    assert calls_made(calls) == ["retry 1", "failure 2", "retry 3", "failure 4"]


def test_dags_test_calls_retry_then_failure(env: Env, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env.write_dag("kinds.py", callback_kinds_dag(calls))
    result = env.run_process("dags", "test", "kinds", "2024-03-01")
    assert result.returncode == 1, result.stderr
    assert calls_made(calls) == ["retry 1", "failure 2"]
