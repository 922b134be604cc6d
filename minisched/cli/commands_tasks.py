"""`tasks states-for-dag-run` and `tasks logs`."""

from __future__ import annotations

import click

from minisched.cli.output import output_option

TASK_COLUMNS = ["task_id", "state", "try_number", "start_date", "end_date", "duration"]


@click.group("tasks")
def tasks_group() -> None:
    """Inspect and manage task instances."""


@tasks_group.command("states-for-dag-run")
@click.argument("dag_id")
@click.argument("run_id")
@output_option
def states_for_dag_run(dag_id: str, run_id: str, output: str) -> None:
    """The state of every task instance of one dag run."""
    from sqlalchemy import select

    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.errors import MinischedError
    from minisched.models import DagRun
    from minisched.scheduler.manual_runs import task_states

    with create_session() as session:
        exists = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if exists is None:
            raise MinischedError(
                f"no run {run_id!r} of DAG {dag_id!r}; `minisched dags list-runs {dag_id}` lists its runs"
            )
        rows = task_states(dag_id, run_id, session=session)
    print_rows(rows, TASK_COLUMNS, output)


@tasks_group.command("logs")
@click.argument("dag_id")
@click.argument("run_id")
@click.argument("task_id")
@click.option("--try", "try_number", type=click.IntRange(min=1), help="Which try (default: the latest).")
def logs(dag_id: str, run_id: str, task_id: str, try_number: int | None) -> None:
    """Print the captured output of one try of a task instance."""
    from sqlalchemy import select

    from minisched.db.session import create_session
    from minisched.errors import MinischedError
    from minisched.models import TaskInstance
    from minisched.scheduler.task_runner import log_path_for
    from minisched.settings import get_settings

    with create_session() as session:
        latest = session.scalar(
            select(TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        )
    if latest is None:
        raise MinischedError(
            f"no task instance {task_id!r} in run {run_id!r} of DAG {dag_id!r}; "
            f"`minisched tasks states-for-dag-run {dag_id} {run_id}` lists its tasks"
        )
    wanted = try_number or latest
    if wanted < 1 or wanted > latest:
        raise MinischedError(f"{task_id!r} in {run_id!r} has had {latest} tries; there is no try {wanted}")
    path = log_path_for(get_settings().logs_folder, dag_id, run_id, task_id, wanted)
    if not path.is_file():
        raise MinischedError(f"no log for try {wanted} of {task_id!r} at {path}")
    click.echo(path.read_text(encoding="utf-8", errors="replace"), nl=False)
