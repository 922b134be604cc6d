"""A manual-only DAG (`schedule=None`) configured per run with `--conf`.

Nothing runs until it is triggered:

    minisched dags trigger example_manual_conf --conf '{"table": "users", "limit": 5}'

`params` holds the defaults; a run's conf overrides them (`params` in the context is the merged
dict, `conf` is exactly what was passed). `{{ params.table }}` is substituted in Bash commands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from minisched import DAG, BashOperator, PythonOperator


def export_table(conf: dict[str, Any], params: dict[str, Any]) -> None:
    print(f"run conf: {conf}")
    print(f"exporting {params['limit']} rows of table {params['table']}")


with DAG(
    "example_manual_conf",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    params={"table": "events", "limit": 10},
    tags=["example", "manual"],
    description="Triggered by hand with --conf",
):
    export = PythonOperator(task_id="export", python_callable=export_table)
    announce = BashOperator(task_id="announce", bash_command="echo exported table {{ params.table }}")
    export >> announce
