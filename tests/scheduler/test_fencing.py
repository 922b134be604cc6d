"""Fenced tries, real processes: a scheduler that was declared dead starts nothing, and recovery
records what really happened to its tries.

Every task appends `start <task> <try>` to a probe file when it begins and `end <task> <try>` when it
ends, so the tests count real executions rather than trusting the tables.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BACKENDS, Env
from tests.scheduler.helpers import (
    Procs,
    assert_try_1_ended_before_its_retry,
    dag_source,
    finished_runs,
    jobs,
    log_rows,
    probe_dag,
    probe_lines,
    probed_work,
    task_instances,
    tokens,
    wait_until,
)


def test_sigkill_with_no_retries_fails_only_the_tries_that_started(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    """The tries a killed scheduler had queued but never started go back to scheduled (no failure,
    no try consumed); the ones it had started are recorded as they really ended."""
    from minisched.scheduler.executors.logs import log_path_for, read_try_record

    probe = tmp_path / "probe.txt"
    env.write_dag("zero.py", probe_dag("zero", probe, tasks=12, seconds=1.5, retries=0))
    zombie = {"MINISCHED_ZOMBIE_THRESHOLD": "5"}
    first = procs.scheduler(extra_env=zombie)
    wait_until(lambda: tokens(probe, "start"), message="a task to start")
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    queued = {ti.task_id for ti in task_instances("zero") if ti.state == "queued"}

    second = procs.scheduler(extra_env=zombie)
    wait_until(lambda: finished_runs("zero"), timeout=120, message="the run to end")
    assert second.stop() == 0, second.output()

    starts, ends = tokens(probe, "start"), tokens(probe, "end")
    states = {ti.task_id: ti for ti in task_instances("zero")}
    assert max(starts.values()) == 1, f"tasks that ran twice: {starts}"
    for task_id, ti in states.items():
        record = read_try_record(log_path_for(env.logs_folder, "zero", ti.run_id, task_id, ti.try_number))
        seen = (task_id, ti.state, starts[task_id], ends[task_id], record)
        if ends[task_id]:  # its one execution ended: recorded as it ended
            assert ti.state == "success", seen
        else:  # failed only when cut short after its task's code was entered (its record says so)
            assert ti.state == "failed" and record is not None and "start_date" in record, seen
    never_started = [t for t in queued if ends[t]]
    assert never_started, f"no queued try was handed back (queued at the kill: {queued})"
    for task_id in never_started:
        assert states[task_id].try_number == 1, task_id  # the withdrawn try number was given back
        assert not log_rows("zero", task_id=task_id, event="failed")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The SIGSTOP case needs two schedulers at once: PostgreSQL only."""
    if request.param != "postgresql" and request.function.__name__.startswith("test_sigstopped"):
        pytest.skip("two schedulers at once need PostgreSQL (row locks); SQLite allows one writer")
    return str(request.param)


def _stop_outside_a_transaction(pid: int, db_url: str) -> None:
    """SIGSTOP `pid` at a moment when it holds no transaction open (else its row locks would block
    the other scheduler until SIGCONT); the test database has no other client yet."""
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    busy = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state <> 'idle'"
    )
    try:
        for _ in range(500):
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.05)
            with engine.connect() as connection:
                if connection.scalar(busy) == 0:
                    return
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.01)
        raise AssertionError("the scheduler never paused outside a transaction")
    finally:
        engine.dispose()


def test_sigstopped_scheduler_starts_no_try_the_other_recovered(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    assert env.db.backend == "postgresql"
    probe = tmp_path / "probe.txt"
    env.write_dag("paused.py", probe_dag("paused", probe, tasks=24, seconds=0.3, retries=1))
    zombie = {"MINISCHED_ZOMBIE_THRESHOLD": "4"}
    first = procs.scheduler(extra_env=zombie)
    wait_until(lambda: tokens(probe, "start"), message="a task to start")
    _stop_outside_a_transaction(first.pid, env.db_url)
    try:
        [first_job] = jobs()
        second = procs.scheduler(extra_env=zombie)
        wait_until(
            lambda: jobs()[0].state == "failed", timeout=120, message="the stopped scheduler declared dead"
        )
        [run] = wait_until(lambda: finished_runs("paused"), timeout=120, message="the run to end")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    # Woken up, it finds it was declared dead and stops without starting anything.
    assert first.wait() != 0
    assert "declared dead" in first.output(), first.output()
    assert second.stop() == 0, second.output()

    assert first_job.id == jobs()[0].id
    assert run.state == "success"
    starts, ends = tokens(probe, "start"), tokens(probe, "end")
    assert set(starts) == {ti.task_id for ti in task_instances("paused")}
    assert set(ends.values()) == {1}, f"tasks that ran to their end twice: {ends}"
    # A try still running when the stopped scheduler's lease ran out was killed (no `end`), and only
    # then retried: it never overlapped its retry.
    lines = probe.read_text().splitlines()
    for task_id in [task_id for task_id, count in starts.items() if count > 1]:
        own = [line.split()[0] + line.split()[2] for line in lines if line.split()[1] == task_id]
        assert own == ["start1", "start2", "end2"], (task_id, own)
    assert {ti.state for ti in task_instances("paused")} == {"success"}


def test_sigstopped_schedulers_running_try_is_killed_before_its_retry_starts(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    """A try started under a valid lease dies once the lease runs out, before anyone may reap it:
    the old try and its retry never overlap, and the reaper's decision stands."""
    assert env.db.backend == "postgresql"
    probe = tmp_path / "probe.txt"
    body = """
        with DAG("long", schedule="@once", start_date=START,
                 default_args={"retries": 1, "retry_delay": timedelta(0)}):
            PythonOperator(task_id="loop", python_callable=work)
        """
    env.write_dag("long.py", dag_source(probed_work(probe) + textwrap.dedent(body)))
    zombie = {"MINISCHED_ZOMBIE_THRESHOLD": "4"}
    first = procs.scheduler(extra_env=zombie)
    wait_until(lambda: "alive 1" in probe_lines(probe), message="the first try to run")
    _stop_outside_a_transaction(first.pid, env.db_url)
    try:
        second = procs.scheduler(extra_env=zombie)
        [run] = wait_until(lambda: finished_runs("long"), timeout=120, message="the run to end")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait() != 0
    assert "declared dead" in first.output(), first.output()
    assert second.stop() == 0, second.output()

    assert_try_1_ended_before_its_retry(probe)
    [ti] = task_instances("long")
    assert (run.state, ti.state, ti.try_number) == ("success", "success", 2)
