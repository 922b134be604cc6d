"""An hourly ETL: a cron schedule, retries with a short delay, a pool, Python and Bash tasks.

The tasks run in `default_pool` (128 slots, created by `minisched initdb`), so the example works on a
fresh database. To give ETL work its own limit, run `minisched pools set etl 4` and set POOL = "etl".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from minisched import DAG, BashOperator, PythonOperator

POOL = "default_pool"


def extract(data_interval_start: datetime, data_interval_end: datetime) -> None:
    print(f"extracting events in [{data_interval_start.isoformat()}, {data_interval_end.isoformat()})")


def transform(ds: str, try_number: int) -> None:
    print(f"transforming partition {ds} (try {try_number})")


with DAG(
    "example_etl_hourly",
    schedule="0 * * * *",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1), "pool": POOL},
    tags=["example", "etl"],
    description="Hourly extract -> transform -> load with retries",
):
    extract_task = PythonOperator(task_id="extract", python_callable=extract, priority_weight=10)
    transform_task = PythonOperator(
        task_id="transform", python_callable=transform, execution_timeout=timedelta(seconds=30)
    )
    load_task = BashOperator(
        task_id="load",
        bash_command='echo "loading partition $MINISCHED_DS for run $MINISCHED_RUN_ID"',
        retries=3,
        retry_exponential_backoff=True,
    )
    extract_task >> transform_task >> load_task
