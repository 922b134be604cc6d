"""Dynamic task mapping: one task instance per item, decided when the run gets there.

`list_files` returns the files to process; `process.partial(...).expand(path=...)` runs one
instance of `process` per file (their map_index is 0, 1, ...), and `summarize` receives the list of
their results, in map_index order. `notify` is mapped over a literal list of channels, and the
BashOperator over pairs of arguments with `expand_kwargs`. A mapped task whose list is empty is
skipped. `minisched tasks states-for-dag-run example_mapping <run_id>` shows every instance;
`minisched tasks logs example_mapping <run_id> process --map-index 1` prints one instance's log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from minisched import DAG, BashOperator, task


@task
def list_files(ds: str) -> list[str]:
    return [f"/data/{ds}/part-{number}.csv" for number in range(3)]


@task
def process(path: str, min_rows: int, ti: Any = None) -> int:
    rows = len(path) + min_rows
    print(f"instance {ti.map_index}: {path} has {rows} rows")
    return rows


@task
def summarize(counts: list[int]) -> int:
    print(f"{len(counts)} files, {sum(counts)} rows in all")
    return sum(counts)


@task
def notify(channel: str, total: int) -> None:
    print(f"telling {channel}: {total} rows loaded")


with DAG(
    "example_mapping",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    tags=["example", "mapping"],
    description="one task instance per file, then one per channel",
):
    total = summarize(process.partial(min_rows=100).expand(path=list_files()))
    notify.partial(total=total).expand(channel=["email", "chat"])
    BashOperator.partial(task_id="archive").expand_kwargs(
        [
            {"bash_command": "echo archiving $KIND", "env": {"KIND": "raw"}},
            {"bash_command": "echo archiving $KIND", "env": {"KIND": "clean"}},
        ]
    )
