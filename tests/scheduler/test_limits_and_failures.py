"""Pools bound concurrency; timeouts and crashing tasks fail their try and the scheduler lives on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from sqlalchemy import func, select

from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    dag_source,
    finished_runs,
    log_rows,
    run_scheduler_until,
    run_to_end,
    task_instances,
    wait_until,
)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end at the same instant as a start does not overlap it)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in points:  # at equal times -1 sorts before +1
        current += step
        peak = max(peak, current)
    return peak


def test_pool_slots_bound_running_tasks(env: Env, procs: Procs, tmp_path: Path) -> None:
    from minisched.db.session import create_session
    from minisched.models import Pool, TaskInstance

    with create_session() as session:
        session.add(Pool(pool="two", slots=2, description="two at a time"))
    spans = tmp_path / "spans.txt"
    env.write_dag(
        "pooled.py",
        dag_source(
            textwrap.dedent(
                f"""
                def work():
                    start = time.time()
                    time.sleep(0.3)
                    with open({str(spans)!r}, "a") as out:
                        out.write(f"{{start!r}} {{time.time()!r}}\\n")

                with DAG("pooled", schedule="@once", start_date=START, max_active_tasks=16):
                    for number in range(10):
                        PythonOperator(task_id=f"work_{{number}}", python_callable=work, pool="two")
                """
            )
        ),
    )

    def in_pool() -> int:
        with create_session() as session:
            return int(
                session.scalar(  # type: ignore[arg-type]
                    select(func.coalesce(func.sum(TaskInstance.pool_slots), 0)).where(
                        TaskInstance.pool == "two", TaskInstance.state.in_(["queued", "running"])
                    )
                )
            )

    proc = procs.scheduler(extra_env={"MINISCHED_PARALLELISM": "8"})
    samples: list[int] = []

    def sample_until_done() -> bool:
        samples.append(in_pool())
        return bool(finished_runs("pooled"))

    wait_until(sample_until_done, interval=0.02, message="the pooled run to end")
    assert proc.stop() == 0

    assert max(samples) == 2, samples  # the pool was filled, never overfilled
    assert {ti.state for ti in task_instances("pooled")} == {"success"}
    intervals = [tuple(map(float, line.split())) for line in spans.read_text().splitlines()]
    assert len(intervals) == 10
    assert _max_overlap(intervals) <= 2  # type: ignore[arg-type]


def test_execution_timeout_fails_python_and_bash_tasks(env: Env, procs: Procs) -> None:
    env.write_dag(
        "slow.py",
        dag_source(
            textwrap.dedent(
                """
                def sleepy():
                    print("going to sleep")
                    time.sleep(60)

                with DAG("slow", schedule="@once", start_date=START):
                    PythonOperator(task_id="python_sleep", python_callable=sleepy,
                                   execution_timeout=timedelta(seconds=1))
                    BashOperator(task_id="bash_sleep", bash_command="sleep 30",
                                 execution_timeout=timedelta(seconds=1))
                """
            )
        ),
    )

    [run] = run_to_end(procs, "slow", timeout=60)

    assert run.state == "failed"
    by_task = {ti.task_id: ti for ti in task_instances("slow")}
    for task_id, ti in by_task.items():
        assert (ti.state, ti.try_number) == ("failed", 1), task_id
        assert ti.duration is not None and ti.duration < 15, (task_id, ti.duration)
        log = (
            env.logs_folder / "dag_id=slow" / f"run_id={run.run_id}" / f"task_id={task_id}" / "attempt=1.log"
        )
        assert "timed out" in log.read_text().lower(), log.read_text()
        [failed] = log_rows("slow", task_id=task_id, event="failed")
        assert "timed out after 1s" in json.loads(failed.extra)["error"].lower()
    assert (
        "going to sleep"
        in (
            env.logs_folder
            / "dag_id=slow"
            / f"run_id={run.run_id}"
            / "task_id=python_sleep"
            / "attempt=1.log"
        ).read_text()
    )


def test_task_crashing_its_process_fails_and_scheduler_lives_on(env: Env, procs: Procs) -> None:
    env.write_dag(
        "crash.py",
        dag_source(
            textwrap.dedent(
                """
                def crash():
                    print("about to crash", flush=True)
                    os._exit(3)

                with DAG("crash", schedule="@once", start_date=START):
                    crashed = PythonOperator(task_id="crash", python_callable=crash)
                    crashed >> PythonOperator(task_id="after", python_callable=lambda: print("still here"),
                                              trigger_rule="all_done")
                    # runs after the crash on the same worker pool: the pool replaced the dead worker
                    crashed >> BashOperator(task_id="next_one", bash_command="echo fine",
                                            trigger_rule="all_done")
                """
            )
        ),
    )

    runs = run_scheduler_until(procs, lambda: finished_runs("crash"), num_runs=40)

    assert all(proc.popen.returncode == 0 for proc in runs)  # every scheduler exited 0 at --num-runs
    states = {ti.task_id: ti for ti in task_instances("crash")}
    assert {task_id: ti.state for task_id, ti in states.items()} == {
        "crash": "failed",
        "after": "success",
        "next_one": "success",
    }
    [failed] = log_rows("crash", task_id="crash", event="failed")
    error = json.loads(failed.extra)["error"]
    assert "exit code 3" in error
    run_id = states["crash"].run_id
    log = (
        env.logs_folder / "dag_id=crash" / f"run_id={run_id}" / "task_id=crash" / "attempt=1.log"
    ).read_text()
    assert "about to crash" in log and "exit code 3" in log
    assert finished_runs("crash")[0].state == "success"  # type: ignore[index]  # the leaves succeeded
