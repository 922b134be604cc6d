"""Stopping the scheduler: SIGKILL (another scheduler recovers its tries) and SIGTERM (graceful)."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections import Counter
from pathlib import Path

from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    dag_source,
    finished_runs,
    jobs,
    log_rows,
    task_instances,
    wait_until,
)

IN_FLIGHT = ("queued", "running")


def test_sigkilled_scheduler_is_recovered_and_no_try_runs_twice(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    done = tmp_path / "done.txt"
    env.write_dag(
        "killme.py",
        dag_source(
            textwrap.dedent(
                f"""
                def work(task_id, try_number):
                    time.sleep(1)
                    with open({str(done)!r}, "a") as out:
                        out.write(f"{{task_id}} {{try_number}}\\n")

                with DAG("killme", schedule="@once", start_date=START,
                         default_args={{"retries": 1, "retry_delay": timedelta(0)}}):
                    for number in range(8):
                        PythonOperator(task_id=f"work_{{number}}", python_callable=work)
                """
            )
        ),
    )
    zombie_env = {"MINISCHED_ZOMBIE_THRESHOLD": "5"}
    first = procs.scheduler(extra_env=zombie_env)
    wait_until(
        lambda: any(ti.state == "running" for ti in task_instances("killme")),
        message="a task instance running",
    )
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    # The tables as the dead scheduler left them.
    orphans = {ti.task_id: ti.try_number for ti in task_instances("killme") if ti.state in IN_FLIGHT}
    assert orphans, "the scheduler was killed with tries in flight"
    [dead_job] = jobs()
    assert dead_job.state == "running"

    second = procs.scheduler(extra_env=zombie_env)
    [run] = wait_until(lambda: finished_runs("killme"), timeout=120, message="the run to end")
    assert second.stop() == 0

    assert run.state == "success", second.output()
    tis = {ti.task_id: ti for ti in task_instances("killme")}
    assert not [ti for ti in tis.values() if ti.state in IN_FLIGHT]
    assert {ti.state for ti in tis.values()} == {"success"}
    lines = [tuple(line.split()) for line in done.read_text().splitlines()]
    duplicates = [line for line, count in Counter(lines).items() if count > 1]
    assert not duplicates, f"tries that ran twice: {duplicates}"
    assert {task_id for task_id, _ in lines} == set(tis)
    for task_id, try_number in orphans.items():
        log = env.logs_folder / "dag_id=killme" / f"run_id={run.run_id}" / f"task_id={task_id}"
        text = (log / f"attempt={try_number}.log").read_text()
        assert f"(job {dead_job.id}) of this try died" in text
        retried = log_rows("killme", task_id=task_id, event="up_for_retry", try_number=try_number)
        if "the try never started" in text:
            # Handed back to scheduled: it ran under the same try number, and no try was spent.
            assert tis[task_id].try_number == try_number, task_id
            assert (task_id, str(try_number)) in lines
            assert not retried
        elif "the try had ended success, as recorded" in text:
            # It finished before its worker went down, and the dead scheduler had not recorded it yet:
            # the record stands, and the try is neither run again nor retried.
            assert tis[task_id].try_number == try_number, task_id
            assert (task_id, str(try_number)) in lines
            assert not retried
        else:
            # The killed try ended failed (its worker was stopped) and was retried under the next number.
            assert "the try had ended failed" in text
            assert tis[task_id].try_number == try_number + 1, task_id
            assert (task_id, str(try_number + 1)) in lines
            assert len(retried) == 1
    for ti in tis.values():
        if ti.task_id not in orphans:
            assert ti.try_number in (1, 2)
    old_job, new_job = jobs()
    assert old_job.id == dead_job.id and old_job.state == "failed" and old_job.end_date is not None
    assert new_job.state == "success"


def test_sigterm_stops_gracefully(env: Env, procs: Procs, tmp_path: Path) -> None:
    env.write_dag(
        "graceful.py",
        dag_source(
            textwrap.dedent(
                """
                with DAG("graceful", schedule="@once", start_date=START):
                    PythonOperator(task_id="nap", python_callable=lambda: time.sleep(2)) >> PythonOperator(
                        task_id="later", python_callable=lambda: None)
                """
            )
        ),
    )
    proc = procs.scheduler()
    wait_until(lambda: {ti.task_id: ti.state for ti in task_instances("graceful")}.get("nap") == "running")
    sent = time.monotonic()
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.output()
    assert time.monotonic() - sent < 25  # within the 30 s grace period, long before a kill

    [job] = jobs()
    assert job.state == "success" and job.end_date is not None
    states = {ti.task_id: ti for ti in task_instances("graceful")}
    # The running try was allowed to finish and was recorded; no new work was started.
    assert states["nap"].state == "success"
    assert states["later"].state in (None, "scheduled")
    assert not [ti for ti in states.values() if ti.state in IN_FLIGHT]

    # A new scheduler carries on where the stopped one left off.
    second = procs.scheduler()
    [run] = wait_until(lambda: finished_runs("graceful"), message="the run to end")
    assert second.stop() == 0
    assert run.state == "success"
    assert {ti.task_id: ti.state for ti in task_instances("graceful")} == {
        "nap": "success",
        "later": "success",
    }


def test_dead_scheduler_jobs_by_heartbeat_or_by_missing_process(env: Env) -> None:
    """A job is dead when its heartbeat is older than the threshold (any host), or after a few silent
    seconds when it ran on this host and its process is gone; live and fresh jobs are left alone."""
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from minisched.db.session import create_session
    from minisched.host import hostname
    from minisched.models import Job
    from minisched.scheduler.recovery import find_dead_jobs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid no longer exists (pids are not reused this quickly)
    now = datetime.now(UTC)
    fresh, silent, stale = now - timedelta(seconds=1), now - timedelta(seconds=6), now - timedelta(seconds=40)
    rows = {
        "me": (hostname(), os.getpid(), fresh),
        "alive_here": (hostname(), os.getppid(), fresh),
        "pid_gone_here": (hostname(), gone.pid, silent),
        "pid_gone_just_now": (hostname(), gone.pid, fresh),
        "elsewhere_fresh": ("some-other-host", gone.pid, fresh),
        "elsewhere_stale": ("some-other-host", os.getpid(), stale),
        "here_stale": (hostname(), os.getpid(), stale),
    }
    ids = {}
    with create_session() as session:
        for name, (host, pid, beat) in rows.items():
            job = Job(
                job_type="scheduler",
                state="running",
                hostname=host,
                pid=pid,
                start_date=beat,
                latest_heartbeat=beat,
            )
            session.add(job)
            session.flush()
            ids[name] = job.id
        session.add(
            Job(
                job_type="scheduler",
                state="success",
                hostname="x",
                pid=1,
                start_date=stale,
                latest_heartbeat=stale,
            )
        )
    with create_session() as session:
        dead = find_dead_jobs(session=session, my_job_id=ids["me"], threshold=30, now=now)
    assert sorted(dead) == sorted(ids[name] for name in ("pid_gone_here", "elsewhere_stale", "here_stale"))


def test_a_job_declared_dead_stops_at_its_next_heartbeat(env: Env) -> None:
    from datetime import UTC, datetime

    import pytest
    from sqlalchemy import update

    from minisched.db.session import create_session
    from minisched.models import Job
    from minisched.scheduler.job import JobDeclaredDead, heartbeat, register_job

    now = datetime.now(UTC)
    with create_session() as session:
        job_id = register_job(session=session, now=now)
        heartbeat(job_id, session=session, now=now)
    with create_session() as session:  # another scheduler recovers this job's tries
        session.execute(update(Job).where(Job.id == job_id).values(state="failed"))
    with pytest.raises(JobDeclaredDead, match="declared dead"), create_session() as session:
        heartbeat(job_id, session=session, now=now)
