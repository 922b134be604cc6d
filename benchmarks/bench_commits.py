"""3. Commits per completed task, for a large parallel DAG run by the scheduler loop in this process.

The engine's `commit` event counts transactions committed (and `before_cursor_execute` statements)
from the loop's start (job registration) to its end (shutdown), for one triggered run of a parallel
DAG of N no-op tasks, divided by the tasks completed:

- local: `SchedulerLoop` with the local executor (parallelism 2), as `minisched scheduler` runs it;
- dags_test: `run_dag_test` (the loop with the in-process executor), folder already loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from benchmarks.common import (
    BenchContext,
    Figure,
    Home,
    at_most,
    counting,
    dag_source,
    in_process,
    new_home,
    trigger,
    write_dag,
)

TARGET = 1.0
PARALLELISM = 2


def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.size(1000, 100)
    figures: list[Figure] = []
    for mode in ("local", "dags_test"):
        with new_home(ctx, f"commits_{mode}") as home:
            commits, statements, done = _measure(home, n, mode)
        params = f"parallel DAG, N={n}" + (
            f", local executor, parallelism={PARALLELISM}" if mode == "local" else ""
        )
        ctx.log(f"  {mode}: {commits} commits, {statements} statements for {done} tasks")
        figures += [
            Figure(
                f"commits.{mode}.per_task",
                commits / done,
                "commits/task",
                f"<= {TARGET:g}",
                at_most(commits / done, TARGET),
                params,
                note=f"{commits} commits / {done} tasks",
            ),
            Figure(
                f"commits.{mode}.statements_per_task", statements / done, "statements/task", params=params
            ),
        ]
    return figures


def _measure(home: Home, n: int, mode: str) -> tuple[int, int, int]:
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import create_session, get_engine
    from minisched.models import TaskInstance
    from minisched.scheduler.executors import executor_for
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions
    from minisched.scheduler.manual_runs import run_dag_test

    dag_id = "commits_bench"
    write_dag(home.dags, dag_id, dag_source(dag_id, n))
    with in_process(home):
        refresh_dag_folder(home.dags)
        if mode == "local":
            key = (dag_id, trigger(dag_id, logical_date=datetime(2030, 1, 1, tzinfo=UTC)))
            options = SchedulerOptions(logs_folder=home.logs, dags_folder=None, handle_signals=False)

            def on_loop() -> None:
                if key in loop.ended_runs:
                    loop.request_stop()

            loop = SchedulerLoop(executor_for("local", PARALLELISM), options, on_loop=on_loop)
            with counting(get_engine()) as counter:
                loop.run()
            if loop.ended_runs.get(key) != "success":
                raise RuntimeError(f"run ended {loop.ended_runs.get(key)}")
        else:
            with counting(get_engine()) as counter:
                outcome = run_dag_test(dag_id, None, dags_folder=home.dags, logs_folder=home.logs)
            if outcome.state != "success":
                raise RuntimeError(f"dags test ended {outcome.state}")
        with create_session() as session:
            done = session.scalar(
                select(func.count()).select_from(TaskInstance).where(TaskInstance.state == "success")
            )
    assert done, "no task completed"
    return counter.commits, counter.statements, int(done)
