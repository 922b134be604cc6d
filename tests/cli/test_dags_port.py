"""`minisched dags port`: Airflow DAG files run on minisched once their imports are rewritten."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from minisched.cli import cli
from tests.conftest import Env
from tests.scheduler.helpers import dag_runs

AIRFLOW_DAGS = Path(__file__).parent.parent / "airflow_dags"

AIRFLOW_FILE = '''"""docstring"""
import os
from airflow import DAG
from airflow.operators.python import (
    PythonOperator,
    get_current_context as current,
)
from airflow.models import Variable, Param, DagRun
from airflow.exceptions import AirflowSkipException
from airflow.operators.dummy import DummyOperator
from airflow.utils.dates import days_ago
from airflow.utils.trigger_rule import TriggerRule
import airflow.utils.helpers
if True:
    from airflow.decorators import task; import sys

with DAG("d", schedule=None, sla_miss_callback=print) as dag:
    PythonOperator(task_id="p", python_callable=print, provide_context=True)
    DummyOperator(task_id="e", trigger_rule=TriggerRule.NO_SUCH_RULE)

    @task.virtualenv
    def venv(): ...
    @task(multiple_outputs=True, executor_config={}, retries=2)
    def outputs(): ...
    venv.expand(x=[1, 2])
'''


def _port(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["dags", "port", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_port_rewrites_only_imports_keeps_line_numbers_and_lists_what_is_left(tmp_path: Path) -> None:
    source = tmp_path / "af.py"
    source.write_text(AIRFLOW_FILE)
    code, out, err = _port(str(source))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == len(AIRFLOW_FILE.splitlines())
    assert lines[2] == "from minisched import DAG"
    assert lines[3] == "from minisched import PythonOperator, get_current_context as current"
    assert lines[4:6] == ["", ""]
    assert lines[7] == "from minisched import Variable, Param; from airflow.models import DagRun"
    assert lines[8] == "from minisched import SkipTask as AirflowSkipException"
    assert lines[9] == "from minisched import EmptyOperator as DummyOperator"
    assert lines[10] == "from airflow.utils.dates import days_ago"
    assert lines[14] == "    from minisched import task; import sys"
    assert lines[16:] == AIRFLOW_FILE.splitlines()[16:]
    assert err.splitlines() == [
        f"{source}:8: airflow.models.DagRun: minisched has no equivalent (yet)",
        f"{source}:11: airflow.utils.dates.days_ago: minisched has no equivalent of this module",
        f"{source}:13: import airflow.utils.helpers: import the names you use from minisched",
        f"{source}:17: DAG(sla_miss_callback=...): minisched does not take this argument",
        f"{source}:18: PythonOperator(provide_context=...): minisched does not take this argument",
        f"{source}:19: TriggerRule.NO_SUCH_RULE: minisched's TriggerRule has no 'NO_SUCH_RULE'",
        f"{source}:21: task.virtualenv: minisched's task has no 'virtualenv'",
        f"{source}:23: task(executor_config=...): minisched does not take this argument",
        "ported 9 imported name(s); 8 thing(s) minisched lacks are left (listed above)",
    ]


def test_port_writes_the_output_file_and_exits_0_when_nothing_is_left(tmp_path: Path) -> None:
    out = tmp_path / "ported.py"
    code, stdout, stderr = _port(str(AIRFLOW_DAGS / "with_params.py"), "-o", str(out))
    assert (code, stdout) == (0, "")
    assert stderr.strip() == f"ported 3 imported name(s) into {out}"
    assert "from minisched import Param" in out.read_text() and "airflow" not in out.read_text()


def test_port_knows_the_standard_provider_and_the_airflow_3_sdk(tmp_path: Path) -> None:
    source = tmp_path / "new.py"
    source.write_text(
        "from airflow.sdk import DAG, task, Param\n"
        "from airflow.providers.standard.operators.bash import BashOperator\n"
        "from airflow.providers.standard.operators.python import ShortCircuitOperator\n"
    )
    code, out, _ = _port(str(source))
    assert code == 0
    assert out.splitlines() == [
        "from minisched import DAG, task, Param",
        "from minisched import BashOperator",
        "from minisched import ShortCircuitOperator",
    ]


def test_port_of_a_broken_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    source, out = tmp_path / "bad.py", tmp_path / "out.py"
    source.write_text("from airflow import DAG\nwith DAG(:\n")
    code, _, err = _port(str(source), "-o", str(out))
    assert code == 1 and not out.exists()
    assert err.strip().startswith(f"Error: {source}:2: not valid Python (")
    assert _port(str(tmp_path / "missing.py"))[0] == 2


@dataclass(frozen=True)
class Expected:
    dag_id: str
    run_state: str
    states: dict[str, tuple[str, int]]  # task_id (task_id[map_index] when mapped) -> (state, try_number)
    logs: dict[str, str]  # task_id (task_id[map_index] when mapped) -> text its log must contain


EXPECTED = {
    "branching.py": Expected(
        "branching",
        "success",
        {
            "branch": ("success", 1),
            "branch_a": ("success", 1),
            "branch_b": ("skipped", 0),
            "join": ("success", 1),
            "pick": ("success", 1),
            "group_a.work": ("skipped", 0),
            "group_b.first": ("success", 1),
            "group_b.second": ("success", 1),
            "condition_is_true": ("success", 1),
            "true_1": ("success", 1),
            "condition_is_false": ("success", 1),
            "false_1": ("skipped", 0),
            "false_2": ("skipped", 0),
            "task_1": ("success", 1),
            "task_2": ("success", 1),
            "short_circuit": ("success", 1),
            "task_3": ("success", 1),
            "task_4": ("skipped", 0),
            "task_5": ("success", 1),
            "task_6": ("skipped", 0),
            "task_7": ("success", 1),
        },
        {
            "branch": "Following branch ['branch_a']; skipping branch_b",
            "pick": "picking for 2024-03-01",
            "condition_is_false": "Condition result is False",
        },
    ),
    "grouped_etl.py": Expected(
        "grouped_etl",
        "success",
        {
            task_id: ("success", 1)
            for task_id in [
                "start",
                "extract.users",
                "extract.orders",
                "transform.clean",
                "transform.join",
                "warehouse",
                "lake",
                "report_a",
                "report_b",
            ]
        },
        {"extract.users": "extract users", "transform.join": "joining"},
    ),
    "skips_and_rules.py": Expected(
        "skips_and_rules",
        "success",  # the only leaf, cleanup (all_done), succeeded
        {
            "maybe_skip": ("skipped", 1),
            "always_works": ("success", 1),
            "hard_fail": ("failed", 1),  # AirflowFailException: no retry despite retries=3
            "after_skip": ("skipped", 0),
            "none_failed": ("success", 1),
            "one_failed": ("success", 1),
            "cleanup": ("success", 1),
        },
        {"hard_fail": "bad credentials: retrying will not help"},
    ),
    "dag_params.py": Expected(
        "dag_params",
        "success",
        {"report": ("success", 1)},
        {"report": "rows=10 (int) region=eu params={'rows': 10, 'region': 'eu'}"},
    ),
    "templated.py": Expected(
        "templated",
        "success",
        {t: ("success", 1) for t in ["templated", "bash_task", "python_task", "current"]},
        {
            "templated": "2024-03-01\n2024-03-08\n2024-03-01\n2024-03-08\n2024-03-01\n2024-03-08\n",
            "bash_task": "here is the message: '' home=unset",
            "python_task": "a is 20240301 and the query is select * from events where day = '2024-03-01'",
            "current": "logical date is 2024-03-01 00:00:00+00:00 run manual__2024-03-01T00:00:00+00:00",
        },
    ),
    "failure_callback.py": Expected(
        "failure_callback",
        "failed",
        {"task1": ("success", 1), "task2": ("failed", 2), "task3": ("upstream_failed", 0)},
        {
            "task1": "Succeeded: failure_callback__task1__20240301",
            "task2": "Task has failed, task_instance_key_str: failure_callback__task2__20240301",
        },
    ),
    "mapping.py": Expected(
        "mapping",
        "success",
        {
            **{f"add_one[{i}]": ("success", 1) for i in range(3)},
            "sum_it": ("success", 1),
            "make_list": ("success", 1),
            **{f"consumer[{i}]": ("success", 1) for i in range(4)},
            **{f"add[{i}]": ("success", 1) for i in range(3)},
            "report": ("success", 1),
            **{f"cross[{i}]": ("success", 1) for i in range(6)},
            "nothing": ("success", 1),
            "never": ("skipped", 0),  # mapped over an empty list
            "bash[0]": ("success", 1),
            "bash[1]": ("success", 1),
        },
        {
            "sum_it": "Total was 9",
            "consumer[2]": "{'a': 'b'}",
            "consumer[3]": "'str'",
            "report": "added: [11, 12, 13]",
            "bash[1]": "value=two",
        },
    ),
    "with_params.py": Expected(
        "with_params", "success", {"report": ("success", 1)}, {"report": "rows=100 region=eu dry_run=False"}
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ported_airflow_dag_behaves_as_airflow_documents(env: Env, name: str) -> None:
    expected = EXPECTED[name]
    source = env.home / name
    shutil.copyfile(AIRFLOW_DAGS / name, source)
    ported = env.run_cli("dags", "port", str(source), "-o", str(env.dags_folder / name))
    assert ported.exit_code == 0, ported.output
    result = env.run_process("dags", "test", expected.dag_id, "2024-03-01", "--output", "json")
    assert result.returncode == (0 if expected.run_state == "success" else 1), result.stderr
    states = {_name(row): (row["state"], row["try_number"]) for row in json.loads(result.stdout)}
    assert states == expected.states
    [run] = dag_runs(expected.dag_id)
    assert run.state == expected.run_state
    for shown, text in expected.logs.items():
        task_id, _, index = shown.rstrip("]").partition("[")
        log = env.run_cli("tasks", "logs", expected.dag_id, run.run_id, task_id, "--map-index", index or "-1")
        assert text in log.stdout, log.stdout


def _name(row: dict[str, Any]) -> str:
    return row["task_id"] if row["map_index"] < 0 else f"{row['task_id']}[{row['map_index']}]"


def test_every_airflow_dag_file_has_expectations() -> None:
    assert {path.name for path in AIRFLOW_DAGS.glob("*.py")} == set(EXPECTED)
