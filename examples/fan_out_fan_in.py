"""Fan-out / fan-in with trigger rules.

`start` fans out to three shards; `shard_c` has no data today and skips itself (a BashOperator that
exits with 99). `merge` uses `none_failed`, so it runs although a shard was skipped. `alert` uses
`one_failed`, so it only runs when a shard failed and is skipped otherwise. `cleanup` uses `all_done`:
it runs whatever happened upstream, like a `finally` block.
"""

from __future__ import annotations

from datetime import UTC, datetime

from minisched import DAG, BashOperator, PythonOperator


def merge_shards(ds: str) -> None:
    print(f"merging the shards of {ds}")


with DAG(
    "example_fan_out_fan_in",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "trigger-rules"],
    description="Fan-out/fan-in with none_failed, one_failed and all_done",
):
    start = BashOperator(task_id="start", bash_command="echo start $MINISCHED_DS")
    shards = [
        BashOperator(task_id="shard_a", bash_command="echo processing shard a"),
        BashOperator(task_id="shard_b", bash_command="echo processing shard b"),
        BashOperator(task_id="shard_c", bash_command="echo no data for shard c; exit 99"),
    ]
    merge = PythonOperator(task_id="merge", python_callable=merge_shards, trigger_rule="none_failed")
    alert = BashOperator(task_id="alert", bash_command="echo a shard failed >&2", trigger_rule="one_failed")
    cleanup = BashOperator(
        task_id="cleanup", bash_command="echo removing temp files", trigger_rule="all_done"
    )

    start >> shards
    shards >> merge
    shards >> alert
    [merge, alert] >> cleanup
