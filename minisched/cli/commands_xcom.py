"""`tasks xcom DAG_ID RUN_ID [TASK_ID]`: the values a run's tasks passed on."""

from __future__ import annotations

import click

from minisched.cli.output import output_option

XCOM_COLUMNS = ["task_id", "map_index", "key", "value", "timestamp"]


@click.command("xcom")
@click.argument("dag_id")
@click.argument("run_id")
@click.argument("task_id", required=False)
@output_option
def xcom(dag_id: str, run_id: str, task_id: str | None, output: str) -> None:
    """The XCom values of one dag run (of one of its tasks, if TASK_ID is given)."""
    from sqlalchemy import select

    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.db.xcom import list_values
    from minisched.exceptions import MinischedError
    from minisched.models import DagRun

    with create_session() as session:
        if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is None:
            raise MinischedError(
                f"no run {run_id!r} of DAG {dag_id!r}; `minisched dags list-runs {dag_id}` lists its runs"
            )
        rows = list_values(dag_id, run_id, task_id, session=session)
    print_rows(rows, XCOM_COLUMNS, output)
