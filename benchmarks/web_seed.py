"""Fill a metadata database for the web server's figures in bulk: a few INSERT statements per thousand
rows, no DAG file parsed and no scheduler run, so 100,000 task instances take seconds.

The DAGs are built in this process with the authoring API and stored as the DAG processor stores them
(`sync_dags`); runs and task instances are plain rows with the states a busy deployment shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, insert, literal, select, true, union_all
from sqlalchemy.orm import Session

START = datetime(2020, 1, 1, tzinfo=UTC)
BATCH = 5000
#: Run states cycle through these, oldest first; the newest run is left running.
RUN_STATES = ("success", "success", "success", "failed", "success")
#: In a failed run, the task at this position failed (the others succeeded).
FAILING_TASK = 7


def seed_dags(count: int, *, session: Session, prefix: str = "dag_", paused: bool = False) -> list[str]:
    """`count` one-task daily DAGs with tags and an owner, stored as the DAG processor stores them
    (`paused`: so that a scheduler running meanwhile leaves them alone)."""
    from minisched.authoring.dag import DAG
    from minisched.authoring.operators import BashOperator
    from minisched.authoring.serialize import serialize_dag
    from minisched.dagfiles.sync import sync_dags

    with DAG(
        "template",
        schedule="@daily",
        start_date=START,
        catchup=False,
        tags=["bench"],
        default_args={"owner": "data"},
        is_paused_upon_creation=paused,
    ) as dag:
        BashOperator(task_id="only", bash_command="true")
    template = serialize_dag(dag)
    serialized = [
        {
            **template,
            "dag_id": f"{prefix}{index:04d}",
            "fileloc": f"/dags/{prefix}{index:04d}.py",
            "tags": ["bench", f"team_{index % 7}"],
        }
        for index in range(count)
    ]
    sync_dags(serialized, session=session)
    return [data["dag_id"] for data in serialized]


def seed_wide_dag(dag_id: str, tasks: int, *, session: Session) -> list[str]:
    """One DAG of `tasks` tasks: chains of ten in task groups of twenty (the grid's and graph's shape)."""
    from minisched.authoring.dag import DAG
    from minisched.authoring.operators import BashOperator
    from minisched.authoring.serialize import serialize_dag
    from minisched.authoring.task_group import TaskGroup
    from minisched.dagfiles.sync import sync_dags

    with DAG(dag_id, schedule=None, start_date=START) as dag:
        previous = None
        group: TaskGroup | None = None
        for index in range(tasks):
            if index % 20 == 0:
                group = TaskGroup(f"part_{index // 20}")
            assert group is not None
            with group:
                task = BashOperator(task_id=f"task_{index:03d}", bash_command="true")
            if previous is not None and index % 10:
                previous >> task
            previous = task
    dag.fileloc = f"/dags/{dag_id}.py"
    sync_dags([serialize_dag(dag)], session=session)
    return sorted(dag.task_dict)


def seed_runs(dag_id: str, task_ids: Sequence[str], runs: int, *, session: Session) -> list[str]:
    """`runs` daily runs of `dag_id` (the newest running, every fifth failed), and a task instance per
    task and run made by one INSERT ... SELECT, so that 100,000 of them take a second, not minutes."""
    from minisched.models import DagRun, TaskInstance, table_of

    run_ids = [f"scheduled__{(START + timedelta(days=i)).isoformat()}" for i in range(runs)]
    run_rows = [_run_row(dag_id, run_id, i, runs) for i, run_id in enumerate(run_ids)]
    for batch in _batches(run_rows):
        session.execute(insert(table_of(DagRun)), batch)
    tasks = union_all(
        *(
            select(literal(task_id).label("task_id"), literal(position).label("position"))
            for position, task_id in enumerate(task_ids)
        )
    ).subquery("seeded_task")
    run = table_of(DagRun)
    failed = and_(run.c.state == "failed", tasks.c.position == FAILING_TASK)
    state = case((run.c.state == "running", None), (failed, "failed"), else_="success")
    rows = select(
        run.c.dag_id,
        run.c.run_id,
        tasks.c.task_id,
        state,
        case((run.c.state == "running", 0), else_=1),
        literal(0),
        run.c.start_date,
        run.c.end_date,
        literal("default_pool"),
        literal(1),
        literal(1),
        literal("BashOperator"),
        literal(""),
    ).where(run.c.dag_id == dag_id)
    names = ("dag_id", "run_id", "task_id", "state", "try_number", "max_tries", "start_date", "end_date")
    more = ("pool", "pool_slots", "priority_weight", "operator", "hostname")
    session.execute(
        insert(table_of(TaskInstance)).from_select([*names, *more], rows.join_from(run, tasks, true()))
    )
    return run_ids


def _run_row(dag_id: str, run_id: str, index: int, runs: int) -> dict[str, Any]:
    logical = START + timedelta(days=index)
    last = index == runs - 1
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_type": "scheduled",
        "state": "running" if last else RUN_STATES[index % len(RUN_STATES)],
        "logical_date": logical,
        "data_interval_start": logical,
        "data_interval_end": logical + timedelta(days=1),
        "queued_at": logical,
        "start_date": logical,
        "end_date": None if last else logical + timedelta(minutes=5),
        "conf": {},
    }


def _batches(rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
