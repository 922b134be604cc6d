"""Two schedulers on one PostgreSQL database: every try runs exactly once, every run is created once."""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import BACKENDS, Env
from tests.scheduler.helpers import (
    Procs,
    dag_runs,
    dag_source,
    finished_runs,
    jobs,
    task_instances,
    wait_until,
)

TASKS = 220


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """As the suite's, but skips SQLite before a database is made for it."""
    if request.param != "postgresql":
        pytest.skip("several schedulers at once need PostgreSQL (row locks); SQLite allows one writer")
    return str(request.param)


def test_two_schedulers_run_every_try_exactly_once(env: Env, procs: Procs, tmp_path: Path) -> None:
    assert env.db.backend == "postgresql"
    from minisched.db.session import create_session
    from minisched.models import DagRun

    ran = tmp_path / "ran.txt"
    env.write_dag(
        "wide.py",
        dag_source(
            textwrap.dedent(
                f"""
                def mark(run_id, task_id, try_number):
                    line = f"{{run_id}} {{task_id}} {{try_number}}\\n".encode()
                    fd = os.open({str(ran)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                    try:
                        os.write(fd, line)
                    finally:
                        os.close(fd)

                with DAG("wide", schedule="@once", start_date=START, max_active_runs=8, max_active_tasks=64):
                    for number in range({TASKS}):
                        PythonOperator(task_id=f"t{{number:03d}}", python_callable=mark)
                """
            )
        ),
    )
    assert env.run_cli("dags", "list").exit_code == 0  # parse the file so it can be triggered
    for day in (2, 3):
        result = env.run_cli("dags", "trigger", "wide", "--logical-date", f"2024-02-0{day}T00:00:00+00:00")
        assert result.exit_code == 0, result.output

    started = time.monotonic()
    schedulers = [procs.scheduler(), procs.scheduler()]
    try:
        runs = wait_until(lambda: finished_runs("wide", 3), timeout=150, message="3 runs of 'wide' to end")
    except AssertionError:
        for proc in schedulers:
            print(proc.output())
        raise
    elapsed = time.monotonic() - started
    for proc in schedulers:
        assert proc.stop() == 0, proc.output()

    assert len(runs) == 3 and {run.state for run in runs} == {"success"}
    with create_session() as session:
        per_date = session.execute(
            select(DagRun.logical_date, func.count())
            .where(DagRun.dag_id == "wide")
            .group_by(DagRun.logical_date)
        ).all()
    assert len(per_date) == 3 and {count for _, count in per_date} == {1}
    assert sorted(run.run_type for run in dag_runs("wide")) == ["manual", "manual", "scheduled"]

    lines = Counter(tuple(line.split()) for line in ran.read_text().splitlines())
    expected = {(run.run_id, f"t{number:03d}", "1") for run in runs for number in range(TASKS)}
    assert set(lines) == expected
    assert [line for line, count in lines.items() if count > 1] == []
    tis = task_instances("wide")
    assert len(tis) == 3 * TASKS
    assert {(ti.state, ti.try_number) for ti in tis} == {("success", 1)}
    assert [job.state for job in jobs()] == ["success", "success"]
    shares = Counter(ti.queued_by_job_id for ti in tis)
    print(f"{3 * TASKS} tries in {elapsed:.1f}s with two schedulers; tries queued per job: {dict(shares)}")
