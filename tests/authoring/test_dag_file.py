"""A DAG file as users write it, imported the way the loader does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from minisched.authoring import DAG, collect_dags
from minisched.exceptions import DagDefinitionError

DOCUMENTED_DAG_FILE = """
from datetime import datetime, timedelta, timezone
from minisched import DAG, PythonOperator, BashOperator, task

def extract(logical_date, **context):        # context keys are passed by name when the signature asks
    print("extracting", logical_date)

with DAG(
    "etl",                                    # dag_id: letters, digits, '_', '-', '.'
    schedule="0 * * * *",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=16,
    max_active_tasks=16,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    tags=["example"],
) as dag:
    a = PythonOperator(task_id="extract", python_callable=extract)
    b = BashOperator(task_id="load", bash_command="echo $MINISCHED_DS", execution_timeout=timedelta(minutes=5))

    @task(retries=3, pool="db", priority_weight=10)
    def report(): ...

    a >> b >> report()

second = DAG("manual_only")
"""  # noqa: E501 -- README's "Writing a DAG" example, with every DAG argument it documents


def import_dag_file(path: Path) -> tuple[ModuleType, list[DAG]]:
    """What the loader does: import the file under a private name inside collect_dags()."""
    spec = importlib.util.spec_from_file_location(f"minisched_dagfile_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with collect_dags() as dags:
        spec.loader.exec_module(module)
    return module, dags


def test_the_documented_dag_file_defines_what_it_says(tmp_path: Path) -> None:
    path = tmp_path / "etl.py"
    path.write_text(DOCUMENTED_DAG_FILE)
    _, dags = import_dag_file(path)
    assert [d.dag_id for d in dags] == ["etl", "manual_only"]
    etl = dags[0]
    assert etl.fileloc == str(path)
    assert etl.schedule == "0 * * * *"
    assert [t.task_id for t in etl.topological_order()] == ["extract", "load", "report"]
    load, report = etl.get_task("load"), etl.get_task("report")
    assert (load.retries, report.retries, report.pool, report.priority_weight) == (1, 3, "db", 10)
    assert etl.get_task("extract").priority_weight_total == 12


def test_errors_in_a_dag_file_point_at_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text(
        textwrap.dedent(
            """
            from minisched import DAG, BashOperator
            with DAG("broken"):
                a = BashOperator(task_id="a", bash_command="true")
                b = BashOperator(task_id="b", bash_command="true")
                a >> b
                b >> a
            """
        )
    )
    with pytest.raises(DagDefinitionError, match="cycle in DAG 'broken': b -> a -> b") as raised:
        import_dag_file(path)
    frames = [(f.filename, f.lineno) for f in __import__("traceback").extract_tb(raised.value.__traceback__)]
    assert (str(path), 7) in frames


def test_importing_the_authoring_api_needs_no_database_or_cli_modules() -> None:
    code = textwrap.dedent(
        """
        import sys
        from minisched import DAG, PythonOperator, BashOperator, task, SkipTask, BaseOperator
        from minisched import BaseHook, Connection, Variable
        from minisched.authoring import serialize, trigger_rules
        DAG("x", schedule=None)
        heavy = [m for m in sys.modules if m.split(".")[0] in {
            "sqlalchemy", "alembic", "click", "croniter", "cryptography"}]
        ours = [m for m in sys.modules if m.startswith("minisched.") and not m.startswith(
            ("minisched.authoring", "minisched.exceptions", "minisched.masking", "minisched.inputs"))]
        print(heavy, ours)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] []"
