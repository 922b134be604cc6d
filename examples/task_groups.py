"""Task groups: `with TaskGroup(...)` and `@task_group`, wired as one unit.

Task ids inside a group are prefixed (`extract.users`); `group >> task` runs every last task of the
group before `task`, `task >> group` every first one after it. `minisched dags show
example_task_groups --format mermaid` draws each group as a subgraph.
"""

from __future__ import annotations

from datetime import UTC, datetime

from minisched import DAG, BashOperator, EmptyOperator, TaskGroup, chain, task, task_group


@task
def clean(table: str) -> None:
    print(f"cleaning {table}")


@task
def publish(table: str) -> None:
    print(f"publishing {table}")


@task_group
def transform(table: str) -> None:
    """One clean-then-publish group per table; each call makes a new group (transform, transform__1)."""
    clean.override(task_id=f"clean_{table}")(table) >> publish.override(task_id=f"publish_{table}")(table)


with DAG(
    "example_task_groups",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 1},
    tags=["example", "groups"],
    description="TaskGroup, @task_group and chain()",
):
    start = EmptyOperator(task_id="start")
    with TaskGroup("extract", tooltip="pull every source") as extract:
        for source in ("users", "orders"):
            BashOperator(task_id=source, bash_command=f"echo extracting {source} for {{{{ ds }}}}")
    done = EmptyOperator(task_id="done")
    chain(start, extract, [transform("users"), transform("orders")], done)
