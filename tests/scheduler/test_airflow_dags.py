"""Airflow-style DAG files through the CLI and the scheduler: task groups, @dag, params checked at trigger."""

from __future__ import annotations

import textwrap

import pytest

from tests.cli.test_dags_port import EXPECTED as PORTED_EXPECTED
from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, run_to_end, task_instances, ti_states

GROUPED = textwrap.dedent(
    """
    from minisched import EmptyOperator, TaskGroup, TriggerRule, chain, dag, task_group

    @dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
    def grouped():
        start = EmptyOperator(task_id="start")
        with TaskGroup("extract", tooltip="pull") as extract:
            a = BashOperator(task_id="a", bash_command="echo a")
            with TaskGroup("inner"):
                b = BashOperator(task_id="b", bash_command="echo b")
            a >> b

        @task_group
        def load():
            @task
            def write():
                print("writing")
            write() >> EmptyOperator(task_id="done")

        end = EmptyOperator(task_id="end", trigger_rule=TriggerRule.ALL_DONE)
        chain(start, extract, load(), end)

    grouped()
    """
)

PARAMS = textwrap.dedent(
    """
    from minisched import Param

    def show(params):
        print("limit is", params["limit"], "table is", params["table"])

    with DAG("with_params", schedule=None, start_date=START, params={
        "limit": Param(10, type="integer", minimum=1, maximum=100),
        "table": Param(type="string", enum=["users", "orders"]),
        "note": "plain values are not checked",
    }):
        PythonOperator(task_id="show", python_callable=show)
    """
)


def test_task_groups_run_and_are_drawn_as_clusters(env: Env, procs: Procs) -> None:
    env.write_dag("grouped.py", dag_source_with(GROUPED))
    mermaid = env.run_cli("dags", "show", "grouped", "--format", "mermaid")
    assert mermaid.exit_code == 0, mermaid.output
    text = mermaid.stdout
    assert 'subgraph group_0 ["extract"]' in text and 'subgraph group_1 ["inner"]' in text
    assert 'subgraph group_2 ["load"]' in text
    lines = text.splitlines()
    inner_at = lines.index('        subgraph group_1 ["inner"]')
    assert lines[inner_at + 1].strip().endswith('["extract.inner.b"]')
    assert lines[inner_at + 2] == "        end"
    dot = env.run_cli("dags", "show", "grouped", "--format", "dot").stdout
    assert 'subgraph "cluster_extract" {' in dot and 'label="inner";' in dot
    assert '"extract.a" -> "extract.inner.b";' in dot and '"extract.inner.b" -> "load.write";' in dot

    trigger = env.run_cli("dags", "trigger", "grouped")
    assert trigger.exit_code == 0, trigger.output
    run_to_end(procs, "grouped")
    assert ti_states("grouped") == dict.fromkeys(
        ["start", "extract.a", "extract.inner.b", "load.write", "load.done", "end"], "success"
    )


def test_trigger_checks_conf_against_the_params(env: Env) -> None:
    env.write_dag("params.py", dag_source_with(PARAMS))
    assert env.run_cli("dags", "list").exit_code == 0
    cases = {
        "{}": "param 'table' is required: it has no default and no value given",
        '{"table": "users", "limit": 0}': "param 'limit': 0 is less than the minimum of 1",
        '{"table": "people"}': "param 'table': 'people' is not one of ['users', 'orders']",
        '{"table": "users", "limit": "5"}': "param 'limit': '5' is not of type 'integer'",
    }
    for conf, message in cases.items():
        result = env.run_cli("dags", "trigger", "with_params", "--conf", conf)
        assert result.exit_code == 1, result.output
        expected = f"Error: DAG 'with_params': {message}; no run was created"
        assert result.stderr.strip() == expected + " (fix --conf or the param's default)"
    assert dag_runs("with_params") == []

    ok = env.run_cli("dags", "trigger", "with_params", "--conf", '{"table": "orders", "note": 3}')
    assert ok.exit_code == 0, ok.output
    [run] = dag_runs("with_params")
    assert run.conf == {"table": "orders", "note": 3}


def test_params_reach_the_task_overridden_by_conf(env: Env) -> None:
    with_default = PARAMS.replace('Param(type="string",', 'Param("users", type="string",')
    env.write_dag("params.py", dag_source_with(with_default))
    result = env.run_process("dags", "test", "with_params", "2024-03-01")
    assert result.returncode == 0, result.stderr
    [run] = dag_runs("with_params")
    log = env.logs_folder / "dag_id=with_params" / f"run_id={run.run_id}" / "task_id=show" / "attempt=1.log"
    assert "limit is 10 table is users" in log.read_text()


def test_dags_test_refuses_a_dag_whose_required_param_has_no_value(env: Env) -> None:
    env.write_dag("params.py", dag_source_with(PARAMS))
    result = env.run_process("dags", "test", "with_params", "2024-03-01")
    assert result.returncode == 1
    assert "param 'table' is required" in result.stderr and "Traceback" not in result.stderr
    assert dag_runs("with_params") == []


def dag_source_with(body: str) -> str:
    from tests.scheduler.helpers import dag_source

    return dag_source(body)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PORTED_EXPECTED))
def test_the_scheduler_runs_each_ported_airflow_dag_as_dags_test_does(
    env: Env, procs: Procs, name: str
) -> None:
    """The same expectations as `dags test` in tests/cli/test_dags_port.py (branches, short circuits,
    groups, trigger rules, FailTask, templates, callbacks, params), through the real scheduler."""
    from tests.cli.test_dags_port import AIRFLOW_DAGS

    expected = PORTED_EXPECTED[name]
    ported = env.run_cli("dags", "port", str(AIRFLOW_DAGS / name), "-o", str(env.dags_folder / name))
    assert ported.exit_code == 0, ported.output
    assert env.run_cli("dags", "list").exit_code == 0
    trigger = env.run_cli("dags", "trigger", expected.dag_id, "--logical-date", "2024-03-01")
    assert trigger.exit_code == 0, trigger.output
    runs = run_to_end(procs, expected.dag_id)  # a scheduled DAG also gets its latest scheduled run
    [run] = [run for run in runs if run.run_id == trigger.output.strip().splitlines()[-1]]
    assert run.state == expected.run_state
    tis = task_instances(expected.dag_id, run.run_id)
    # Named as `dags test` prints them: a mapped task's instances as `task[map_index]`.
    named = {f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: ti for ti in tis}
    assert {shown: (ti.state, ti.try_number) for shown, ti in named.items()} == expected.states
    for shown, text in expected.logs.items():
        task_id, _, index = shown.rstrip("]").partition("[")
        instance = ("--map-index", index) if index else ()
        log = env.run_cli("tasks", "logs", expected.dag_id, run.run_id, task_id, *instance)
        assert text in log.stdout, log.stdout


def test_a_dag_function_parameter_takes_the_triggered_conf(env: Env, procs: Procs) -> None:
    from tests.cli.test_dags_port import AIRFLOW_DAGS

    target = str(env.dags_folder / "p.py")
    assert env.run_cli("dags", "port", str(AIRFLOW_DAGS / "dag_params.py"), "-o", target).exit_code == 0
    assert env.run_cli("dags", "list").exit_code == 0
    refused = env.run_cli("dags", "trigger", "dag_params", "--conf", '{"region": "mars"}')
    assert refused.exit_code == 1 and "param 'region': 'mars' is not one of ['eu', 'us']" in refused.stderr
    assert (
        env.run_cli("dags", "trigger", "dag_params", "--conf", '{"rows": 3, "region": "us"}').exit_code == 0
    )
    [run] = run_to_end(procs, "dag_params")
    assert run.state == "success"
    log = env.run_cli("tasks", "logs", "dag_params", run.run_id, "report").stdout
    assert "rows=3 (int) region=us params={'rows': 3, 'region': 'us'}" in log


def test_naive_start_dates_are_read_in_the_configured_default_timezone(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from minisched import settings
    from minisched.db.session import create_session
    from minisched.models import SerializedDagModel

    env.vars["MINISCHED_DEFAULT_TIMEZONE"] = "Europe/Berlin"
    monkeypatch.setenv("MINISCHED_DEFAULT_TIMEZONE", "Europe/Berlin")
    settings.configure()
    env.write_dag(
        "naive.py",
        dag_source_with(
            'DAG("naive", schedule="0 6 * * *", start_date=datetime(2024, 1, 1), catchup=False)\n'
        ),
    )
    listed = env.run_process("dags", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    with create_session() as session:
        data = session.scalar(select(SerializedDagModel.data).where(SerializedDagModel.dag_id == "naive"))
    assert data is not None
    assert (data["timezone"], data["start_date"]) == ("Europe/Berlin", "2023-12-31T23:00:00+00:00")
