"""Branching: pick which tasks run, and stop early when there is nothing to do.

- `@task.branch` returns the task id (or ids) to follow; the other direct downstream tasks are skipped.
  The join after the branches uses `none_failed_min_one_success`, so it runs after whichever ran.
- `@task.short_circuit` skips everything after it when it returns something falsy.
"""

from __future__ import annotations

from datetime import UTC, datetime

from minisched import DAG, EmptyOperator, TriggerRule, task


@task.branch
def weekday_or_weekend(logical_date: datetime) -> str:
    return "weekend_report" if logical_date.weekday() >= 5 else "weekday_report"


@task.short_circuit
def has_new_rows(ds: str) -> bool:
    print(f"checking for rows of {ds}")
    return True


with DAG(
    "example_branching",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "branching"],
    description="@task.branch and @task.short_circuit",
):
    reports = [EmptyOperator(task_id="weekday_report"), EmptyOperator(task_id="weekend_report")]
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    has_new_rows() >> weekday_or_weekend() >> reports >> join
