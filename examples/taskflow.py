"""TaskFlow style: plain functions become tasks with `@task`.

Calling a decorated function inside the DAG creates the task and returns it, so dependencies read as
`extract() >> transform() >> load()`. Tasks do not pass return values to each other (there is no
XCom in minisched): share data through files or tables keyed by the run's `ds` or `run_id`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from minisched import DAG, task


@task
def extract(run_id: str) -> None:
    print(f"extracting for {run_id}")


@task(retries=2, retry_delay=timedelta(seconds=1))
def transform(ds: str) -> None:
    print(f"transforming {ds}")


@task(priority_weight=5)
def load(logical_date: datetime) -> None:
    print(f"loading data of {logical_date.isoformat()}")


@task
def notify(dag_id: str) -> None:
    print(f"{dag_id} finished")


with DAG(
    "example_taskflow",
    schedule=timedelta(hours=12),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "taskflow"],
    description="@task functions chained with >>",
):
    extract() >> transform() >> load() >> notify()
