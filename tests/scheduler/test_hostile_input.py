"""Hostile input: each gets one clear line and a non-zero exit before anything is committed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from minisched.inputs import MAX_CONF_DEPTH, MAX_ID_LENGTH, MAX_INT
from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, dag_source, log_rows, run_to_end, task_instances

DAGS = textwrap.dedent(
    """
    def show(conf):
        print("conf depth ok:", json.dumps(conf)[:40])

    with DAG("good", schedule=None, start_date=START):
        PythonOperator(task_id="show", python_callable=show)
    """
)


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def _ready(env: Env) -> None:
    env.write_dag("dags.py", dag_source(DAGS, imports="import json"))
    assert env.run_cli("dags", "list").exit_code == 0


def _assert_one_line(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _nothing_committed() -> None:
    assert dag_runs("good") == []
    assert log_rows("good", event="cli_dags_trigger") == []


@pytest.mark.parametrize(
    ("conf", "needle"),
    [
        (nested(600), f"more than {MAX_CONF_DEPTH} levels"),
        (nested(MAX_CONF_DEPTH + 1), f"more than {MAX_CONF_DEPTH} levels"),
        ("[" * 200_000 + "]" * 200_000, f"more than {MAX_CONF_DEPTH} levels"),
        ('{"x": NaN}', "NaN"),
        ('{"x": [1, -Infinity]}', "-Infinity"),
        ('{"x": 1e999}', "1e999"),
        ('{"x": "\\ud800"}', "not valid UTF-8"),
        ('{"x": ' + "7" * 5000 + "}", "5000 digits"),
    ],
    ids=[
        "deep-600",
        "deep-limit+1",
        "deep-200000",
        "nan",
        "infinity",
        "float-overflow",
        "lone-surrogate",
        "huge-int",
    ],
)
def test_trigger_refuses_a_hostile_conf_and_commits_nothing(env: Env, conf: str, needle: str) -> None:
    _ready(env)
    result = env.run_cli("dags", "trigger", "good", "--conf", conf)
    assert result.exit_code == 1, result.output
    _assert_one_line(result.stderr, "--conf", needle)
    _nothing_committed()


def test_a_conf_600_deep_is_refused_and_the_scheduler_keeps_running(env: Env, procs: Procs) -> None:
    """The table row: the run used to be committed, then the scheduler died pickling it."""
    _ready(env)
    refused = env.run_process("dags", "trigger", "good", "--conf", nested(600))
    assert refused.returncode == 1
    _assert_one_line(refused.stderr, "nested more than")
    _nothing_committed()

    at_limit = env.run_process("dags", "trigger", "good", "--conf", nested(MAX_CONF_DEPTH))
    assert at_limit.returncode == 0, at_limit.stderr
    [run] = run_to_end(procs, "good")
    assert run.state == "success"
    assert {ti.task_id: ti.state for ti in task_instances("good")} == {"show": "success"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dags", "trigger", "good", "--logical-date", "9999-12-31T23:00:00-05:00"], "out of range"),
        (["dags", "trigger", "good", "--logical-date", "0001-01-01T00:00:00+01:00"], "out of range"),
        (["dags", "trigger", "good", "--logical-date", "1066-10-14"], "out of range"),
        (["dags", "backfill", "good", "-s", "2024-01-01", "-e", "9999-12-31"], "out of range"),
        (["db", "clean", "--before", "9999-12-31T23:59:59-10:00", "-y"], "out of range"),
    ],
    ids=["trigger-late", "trigger-early", "trigger-1066", "backfill-end", "db-clean"],
)
def test_dates_out_of_range_are_one_line_errors(env: Env, args: list[str], needle: str) -> None:
    _ready(env)
    result = env.run_cli(*args)
    assert result.exit_code == 1, result.output
    _assert_one_line(result.stderr, needle)
    _nothing_committed()


@pytest.mark.parametrize(
    "args",
    [
        ["pools", "set", "big", str(10**30)],
        ["pools", "set", "big", str(MAX_INT + 1)],
        ["dags", "list-runs", "good", "--limit", str(10**30)],
        ["runs", "--limit", str(MAX_INT + 1)],
        ["scheduler", "--num-runs", str(10**30)],
    ],
    ids=["pool-slots-1e30", "pool-slots-2^31", "list-runs-limit", "grid-limit", "num-runs"],
)
def test_numbers_past_the_column_range_are_usage_errors(env: Env, args: list[str]) -> None:
    from minisched.db.session import create_session
    from minisched.models import Pool

    _ready(env)
    result = env.run_cli(*args)
    assert result.exit_code == 2, result.output
    assert "2147483647" in result.stderr and "Traceback" not in result.stderr
    with create_session() as session:
        assert session.scalar(select(func.count()).select_from(Pool).where(Pool.pool == "big")) == 0
    assert env.run_cli("pools", "set", "big", str(MAX_INT)).exit_code == 0


def test_weights_past_the_integer_range(env: Env, procs: Procs) -> None:
    """A weight past INTEGER is an import error; a sum of large weights is clamped as in Airflow."""
    env.write_dag(
        "weights.py",
        dag_source(
            textwrap.dedent(
                """
                with DAG("heavy", schedule="@daily", start_date=START, catchup=False):
                    BashOperator(task_id="a", bash_command="true", priority_weight=2**30) >> BashOperator(
                        task_id="b", bash_command="true", priority_weight=2**30) >> BashOperator(
                        task_id="c", bash_command="true", priority_weight=2**30)
                """
            )
        ),
    )
    env.write_dag(
        "too_heavy.py",
        dag_source(
            'with DAG("too_heavy", schedule=None, start_date=START):\n'
            '    BashOperator(task_id="t", bash_command="true", priority_weight=10**30)\n'
        ),
    )
    listed = env.run_cli("dags", "list-import-errors", "--output", "json")
    [error] = json.loads(listed.stdout)
    assert error["filename"].endswith("too_heavy.py") and "priority_weight" in error["error"]
    assert str(MAX_INT) in error["error"]
    [run] = run_to_end(procs, "heavy")
    assert run.state == "success"
    weights = {ti.task_id: ti.priority_weight for ti in task_instances("heavy")}
    assert weights == {"a": MAX_INT, "b": MAX_INT, "c": 2**30}


def test_ids_must_fit_a_log_folder_name(env: Env) -> None:
    longest = "d" * MAX_ID_LENGTH
    task = "t" * MAX_ID_LENGTH
    env.write_dag(
        "long.py",
        dag_source(
            f'with DAG("{longest}", schedule=None, start_date=START):\n'
            f'    BashOperator(task_id="{task}", bash_command="echo long ids work")\n'
        ),
    )
    env.write_dag(
        "too_long.py",
        dag_source(
            'with DAG("ok", schedule=None, start_date=START):\n'
            f'    BashOperator(task_id="{task}x", bash_command="true")\n'
        ),
    )
    result = env.run_process("dags", "test", longest, "2024-02-01")
    assert result.returncode == 0, result.stderr
    [run] = dag_runs(longest)
    log = env.logs_folder / f"dag_id={longest}" / f"run_id={run.run_id}" / f"task_id={task}" / "attempt=1.log"
    assert "long ids work" in log.read_text()
    errors = json.loads(env.run_cli("dags", "list-import-errors", "--output", "json").stdout)
    assert len(errors) == 1 and f"1 to {MAX_ID_LENGTH}" in errors[0]["error"]
    assert errors[0]["filename"].endswith("too_long.py")


def test_non_utf8_arguments_are_refused_before_anything_is_written(env: Env) -> None:
    _ready(env)
    for args in (
        [b"dags", b"trigger", b"good", b"--conf", b'{"who": "\xff\xfe"}'],
        [b"pools", b"set", b"p\xe9", b"3"],
    ):
        result = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"minisched", *args],
            env={**os.environ, **env.vars},
            check=False,
            capture_output=True,
            timeout=120,
        )
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert "not valid UTF-8" in stderr and "Traceback" not in stderr
    _nothing_committed()
    assert "p" not in env.run_cli("pools", "list").stdout.split()
