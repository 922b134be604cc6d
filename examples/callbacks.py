"""Task callbacks (called in the worker with the try's context) and DAG callbacks (once per run).

`on_execute_callback` runs before the task, then `on_success_callback`, `on_retry_callback`,
`on_failure_callback` or `on_skipped_callback` after it, given directly or through `default_args`.
A callback that raises is logged and changes nothing. `flaky` fails its first try on purpose, so
its retry callback runs, then its success callback. Callback output is in the try's log:
`minisched tasks logs example_callbacks <run_id> flaky --try 1`.

The DAG's own `on_success_callback` / `on_failure_callback` are called once when a run ends, with
`dag_run` and `reason` in the context, by the DAG callback process (its output is in
`$MINISCHED_LOGS_FOLDER/dag_callbacks.log`; under `dags test`, on the terminal).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from minisched import DAG, BashOperator, PythonOperator


def announce(context: dict[str, Any]) -> None:
    ti = context["ti"]
    print(f"starting {ti.task_id} (try {ti.try_number}) of {context['run_id']}")


def succeeded(context: dict[str, Any]) -> None:
    print(f"{context['ti'].task_id} succeeded for {context['ds']}")


def retrying(context: dict[str, Any]) -> None:
    print(f"{context['ti'].task_id} will retry after: {context['exception']!r}")


def alert(context: dict[str, Any]) -> None:
    print(f"ALERT: {context['ti'].task_id} failed: {context['exception']!r}")


def run_ended(context: dict[str, Any]) -> None:
    run = context["dag_run"]
    print(f"run {run.run_id} of {run.dag_id} ended {run.state} ({context['reason']})")


def flaky(try_number: int) -> None:
    if try_number == 1:
        raise ConnectionError("the source was busy")
    print("fetched on try", try_number)


with DAG(
    "example_callbacks",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={
        "on_execute_callback": announce,
        "on_success_callback": succeeded,
        "on_failure_callback": alert,
    },
    on_success_callback=run_ended,
    on_failure_callback=run_ended,
    tags=["example", "callbacks"],
    description="on_execute/success/retry/failure callbacks, and the DAG's own",
):
    fetch = PythonOperator(
        task_id="flaky",
        python_callable=flaky,
        retries=1,
        retry_delay=timedelta(seconds=0),
        on_retry_callback=retrying,
    )
    store = BashOperator(task_id="store", bash_command="echo storing {{ ds }}")
    fetch >> store
