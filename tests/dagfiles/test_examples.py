"""The example DAGs load without import errors, show what they promise, and run their tasks quickly."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from minisched.authoring import (
    DAG,
    BaseOperator,
    SkipTask,
    TriggerDecision,
    evaluate_trigger_rule,
    task_context,
)
from minisched.authoring.context import running_with_context
from minisched.authoring.mapping import MappedOperator
from minisched.authoring.templating import rendered_copy
from minisched.dagfiles.importer import import_dag_file
from minisched.dagfiles.plan import list_dag_files
from minisched.db.session import create_session
from minisched.exceptions import TaskFailure
from minisched.models import SerializedDagModel
from tests.conftest import Env
from tests.dagfiles.helpers import dag_rows, import_errors, refresh

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOGICAL_DATE = datetime(2024, 3, 10, tzinfo=UTC)


def _serialized(dag_id: str) -> dict[str, Any]:
    with create_session() as session:
        data = session.scalar(select(SerializedDagModel.data).where(SerializedDagModel.dag_id == dag_id))
    assert data is not None
    return data


def _tasks(dag_id: str) -> dict[str, dict[str, Any]]:
    return {t["task_id"]: t for t in _serialized(dag_id)["tasks"]}


def _run_mapped(task: MappedOperator, conf: dict[str, Any] | None, xcom: dict[tuple[str, str], Any]) -> str:
    """Run every instance of a mapped task (until its input has no next item), as the scheduler would
    expand it; the task's value is the list of the instances' values. An empty input skips it."""
    values: list[Any] = []
    for map_index in itertools.count():
        try:
            concrete = task.unmap(map_index, _MemoryXCom(xcom, task.task_id))
        except TaskFailure:
            break
        state = _run_tries(concrete, conf, xcom, map_index=map_index)
        assert state == "success", f"{task.task_id}[{map_index}] ended {state}"
        values.append(xcom.pop((task.task_id, "return_value"), None))
    xcom[(task.task_id, "return_value")] = values
    return "success" if values else "skipped"


def _run_tries(
    task: BaseOperator, conf: dict[str, Any] | None, xcom: dict[tuple[str, str], Any], *, map_index: int = -1
) -> str:
    """Run tries of ``task`` as a worker would (rendered, with its context current) until one ends it;
    its XCom values go to ``xcom``."""
    if isinstance(task, MappedOperator):
        return _run_mapped(task, conf, xcom)
    for try_number in range(1, task.retries + 2):
        context = task_context(
            task,
            run_id="manual__test",
            logical_date=LOGICAL_DATE,
            data_interval_start=LOGICAL_DATE,
            data_interval_end=LOGICAL_DATE + timedelta(hours=1),
            try_number=try_number,
            conf=conf,
            map_index=map_index,
        )
        ti = context["ti"]
        object.__setattr__(ti, "xcom", _MemoryXCom(xcom, task.task_id))  # no database here
        try:
            with running_with_context(context):
                value = rendered_copy(task, context).execute(context)
            if value is not None and task.do_xcom_push:
                ti.xcom_push("return_value", value)
                if getattr(task, "multiple_outputs", False):
                    for key, item in value.items():
                        ti.xcom_push(key, item)
        except SkipTask:
            return "skipped"
        except Exception:
            if try_number > task.retries:
                raise
            continue
        return "success"
    raise AssertionError("unreachable: the last try returns or raises")


def test_examples_load_without_import_errors(env: Env) -> None:
    report = refresh(EXAMPLES)
    assert import_errors() == {}
    assert report.files_seen >= 4
    rows = dag_rows()
    assert {"example_etl_hourly", "example_fan_out_fan_in", "example_taskflow", "example_manual_conf"} <= set(
        rows
    )
    assert all(row.is_active and row.fileloc.startswith(str(EXAMPLES)) for row in rows.values())


def test_examples_show_what_the_issue_asks_for(env: Env) -> None:
    refresh(EXAMPLES)
    rows = dag_rows()
    etl = _tasks("example_etl_hourly")
    assert rows["example_etl_hourly"].schedule == "0 * * * *"
    assert all(t["retries"] >= 1 and t["pool"] == "default_pool" for t in etl.values())
    fan = _tasks("example_fan_out_fan_in")
    assert fan["cleanup"]["trigger_rule"] == "all_done"
    assert {fan["merge"]["trigger_rule"], fan["alert"]["trigger_rule"]} == {"none_failed", "one_failed"}
    assert len(fan["start"]["downstream_task_ids"]) == 3
    taskflow = _tasks("example_taskflow")
    assert {t["operator"] for t in taskflow.values()} == {"DecoratedPythonOperator"}
    assert rows["example_manual_conf"].schedule is None and rows["example_manual_conf"].next_dagrun is None
    assert all(rows[d].next_dagrun is not None for d in ("example_etl_hourly", "example_taskflow"))
    branching = _tasks("example_branching")
    assert branching["weekday_or_weekend"]["operator"] == "DecoratedBranchOperator"
    assert branching["join"]["trigger_rule"] == "none_failed_min_one_success"


def test_airflow_idiom_examples_show_groups_templates_and_callbacks(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    refresh(EXAMPLES)
    groups = _serialized("example_task_groups")
    assert [g["group_id"] for g in groups["task_groups"]] == ["extract", "transform", "transform__1"]
    assert _tasks("example_task_groups")["extract.users"]["downstream_task_ids"] == [
        "transform.clean_users",
        "transform__1.clean_orders",
    ]
    states = _run_in_process(_load("callbacks.py"))
    assert states == {"flaky": "success", "store": "success"}
    capsys.readouterr()
    _run_in_process(_load("templating.py"))
    out = capsys.readouterr().out
    assert "exporting analytics.events_v2 from 2024-03-09 to 2024-03-10 as s3://bucket/eu/20240310.csv" in out
    assert (
        "summarizing EU for 2024-03-10: window 2024-03-10 00:00:00+00:00 .. 2024-03-10 01:00:00+00:00" in out
    )
    assert "report for example_templating on 2024-03-10 (try 1, 20240310T000000)" in out


class _MemoryXCom:
    """XCom in a dict, for a `ti`, so examples that pass values run without a database."""

    def __init__(self, store: dict[tuple[str, str], Any], task_id: str) -> None:
        self.store, self.task_id = store, task_id

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(
        self, task_ids: str | None = None, dag_id: str | None = None, key: str = "return_value"
    ) -> Any:
        return self.store.get((task_ids or self.task_id, key))


def _run_in_process(dag: DAG, conf: dict[str, Any] | None = None) -> dict[str, str]:
    """Run every task in dependency order (retrying as its retries allow), deciding trigger rules as
    the scheduler does."""
    states: dict[str, str] = {}
    xcom: dict[tuple[str, str], Any] = {}
    for task in dag.topological_order():
        upstream = Counter(states[t] for t in task.upstream_task_ids)
        decision = evaluate_trigger_rule(task.trigger_rule, upstream, len(task.upstream_task_ids))
        if decision is not TriggerDecision.READY:
            states[task.task_id] = decision.value
            continue
        started = time.monotonic()
        states[task.task_id] = _run_tries(task, conf, xcom)
        assert time.monotonic() - started < 1.0, f"{task.task_id} is too slow for an example"
    return states


def _load(name: str) -> DAG:
    result = import_dag_file(str(EXAMPLES / name))
    assert result.error is None
    (dag,) = result.dags.values()
    return dag


@pytest.mark.parametrize("path", list_dag_files(EXAMPLES), ids=lambda p: Path(p).name)
def test_every_example_task_runs_quickly(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # No database here: variables and connections come from the environment, which is read first.
    monkeypatch.setenv("MINISCHED_VAR_EXAMPLE_REGION", "eu-central-1")
    monkeypatch.setenv("MINISCHED_VAR_EXAMPLE_LIMITS", '{"rows": 5}')
    monkeypatch.setenv("MINISCHED_CONN_EXAMPLE_WAREHOUSE", "postgres://etl:pw-example@db:5432/dwh")
    result = import_dag_file(path)
    assert result.error is None and result.dags
    for dag in result.dags.values():
        states = _run_in_process(dag)
        assert "failed" not in states.values() and "upstream_failed" not in states.values()


def test_fan_out_example_skips_a_shard_and_still_cleans_up() -> None:
    states = _run_in_process(_load("fan_out_fan_in.py"))
    assert states == {
        "start": "success",
        "shard_a": "success",
        "shard_b": "success",
        "shard_c": "skipped",
        "merge": "success",
        "alert": "skipped",
        "cleanup": "success",
    }


def test_manual_example_reads_its_conf(capsys: pytest.CaptureFixture[str]) -> None:
    _run_in_process(_load("manual_conf.py"), conf={"table": "users", "limit": 5})
    out = capsys.readouterr().out
    assert "exporting 5 rows of table users" in out
    assert "exported table users" in out


def test_taskflow_example_passes_values(capsys: pytest.CaptureFixture[str]) -> None:
    states = _run_in_process(_load("taskflow.py"))
    assert set(states.values()) == {"success"}
    out = capsys.readouterr().out
    assert "transforming 3 readings of 2024-03-10" in out
    assert "loading 3 readings (mean 9.5)" in out
    assert "example_taskflow finished: loaded 3" in out


def test_mapping_example_runs_one_instance_per_item(capsys: pytest.CaptureFixture[str]) -> None:
    states = _run_in_process(_load("mapping.py"))
    assert states == dict.fromkeys(["list_files", "process", "summarize", "notify", "archive"], "success")
    out = capsys.readouterr().out
    assert "instance 2: /data/2024-03-10/part-2.csv has 127 rows" in out
    assert "3 files, 381 rows in all" in out
    assert "telling chat: 381 rows loaded" in out and "archiving clean" in out
