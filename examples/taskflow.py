"""TaskFlow style: plain functions become tasks with `@task`, and pass values to each other.

Calling a decorated function inside the DAG creates the task. Passing one task's result to another
makes it upstream, and the function receives the value (stored as XCom `return_value`) when it
runs; `result["key"]` picks one key of a task with `multiple_outputs=True`. `minisched tasks xcom
example_taskflow <run_id>` lists the values of a run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from minisched import DAG, task


@task
def extract(run_id: str) -> list[dict[str, Any]]:
    print(f"extracting for {run_id}")
    return [{"city": "Lyon", "temp": 12.5}, {"city": "Oslo", "temp": -3.0}, {"city": "Lima", "temp": 19.0}]


@task(retries=2, retry_delay=timedelta(seconds=1), multiple_outputs=True)
def transform(readings: list[dict[str, Any]], ds: str) -> dict[str, Any]:
    print(f"transforming {len(readings)} readings of {ds}")
    temps = [reading["temp"] for reading in readings]
    return {"count": len(temps), "mean": round(sum(temps) / len(temps), 2)}


@task(priority_weight=5)
def load(count: int, mean: float, logical_date: datetime) -> str:
    print(f"loading {count} readings (mean {mean}) of {logical_date.isoformat()}")
    return f"loaded {count}"


@task
def notify(summary: str, dag_id: str) -> None:
    print(f"{dag_id} finished: {summary}")


with DAG(
    "example_taskflow",
    schedule=timedelta(hours=12),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "taskflow"],
    description="@task functions passing values through XCom",
):
    stats = transform(extract())
    notify(load(stats["count"], stats["mean"]))
