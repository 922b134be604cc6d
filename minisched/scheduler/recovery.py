"""Recovering the tries of dead jobs: no task instance stays queued or running forever.

A scheduler job is dead when its heartbeat is older than the zombie threshold, or at once when it ran
on this host and its process is gone. Recovery marks it failed, then reaps its in-flight tries
(`transitions.reap`): failed or retried per their retries.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from minisched.db.audit import event_row, record_events
from minisched.db.session import is_postgresql
from minisched.host import hostname
from minisched.models import RunKey
from minisched.models.job import HEARTBEATING_JOB_TYPES
from minisched.scheduler import statements as sql
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.executors.base import TryResult
from minisched.scheduler.executors.logs import append_log_line
from minisched.scheduler.transitions import finish, reap

log = logging.getLogger(__name__)
#: Seconds without a heartbeat after which a job whose process is gone from this host counts as dead.
PID_CHECK_SILENCE = 5.0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_dead_jobs(*, session: Session, my_job_id: int, threshold: float, now: datetime) -> list[int]:
    """Running jobs whose process on this host is gone, or schedulers (and backfills) that stopped
    heart-beating. A `dags test` job runs tries inline and cannot beat meanwhile: only its pid counts."""
    rows = session.execute(sql.RUNNING_JOBS, {"my_job_id": my_job_id})
    stale_before = now - timedelta(seconds=threshold)
    # The pid shortcut needs a few seconds of silence too: two containers can share a hostname while
    # their pids live in different namespaces.
    pid_check_before = now - timedelta(seconds=min(threshold, PID_CHECK_SILENCE))
    here = hostname()
    return [
        job_id
        for job_id, job_type, host, pid, beat in rows
        if (host == here and beat < pid_check_before and not process_alive(pid))
        or (job_type in HEARTBEATING_JOB_TYPES and beat < stale_before)
    ]


def recover_orphans(
    *,
    session: Session,
    my_job_id: int,
    threshold: float,
    now: datetime,
    cache: DagStructureCache,
    log_path_for: Callable[[str, str, str, int, int], Path],
    queued_timeout: float | None = None,
) -> dict[RunKey, set[str]]:
    """Fail dead schedulers' (and workers') jobs and fail/retry their in-flight tries, and the tries
    queued longer than `queued_timeout`; returns the tasks that finished."""
    dead = find_dead_jobs(session=session, my_job_id=my_job_id, threshold=threshold, now=now)
    if dead:
        session.execute(sql.FAIL_JOBS, {"ids": dead, "now": now})
        for job_id in dead:
            log.warning(
                "scheduler job %s is dead (no heartbeat or process gone); recovering its tries", job_id
            )
    finished, reaped = reap(
        session=session, my_job_id=my_job_id, now=now, cache=cache, log_path_for=log_path_for
    )
    if reaped:
        extra = {"task_instances": reaped, "dead_jobs": dead}
        record_events([event_row("orphan_recovered", extra=extra, owner="scheduler")], session=session)
    if queued_timeout is not None:
        expired = expire_queued(
            session=session,
            my_job_id=my_job_id,
            now=now,
            timeout=queued_timeout,
            cache=cache,
            log_path_for=log_path_for,
        )
        finished = {
            key: finished.get(key, set()) | expired.get(key, set()) for key in finished.keys() | expired
        }
    return finished


def expire_queued(
    *,
    session: Session,
    my_job_id: int,
    now: datetime,
    timeout: float,
    cache: DagStructureCache,
    log_path_for: Callable[[str, str, str, int, int], Path],
) -> dict[RunKey, set[str]]:
    """Tries queued longer than `timeout` seconds -> failed or up_for_retry, as Airflow's
    task_queued_timeout: the broker lost their message, or no worker for their queue came. A message
    that still arrives later finds its try no longer queued under that number, and is dropped."""
    query = sql.QUEUED_TOO_LONG_LOCKED if is_postgresql(session) else sql.QUEUED_TOO_LONG
    stuck = session.execute(query, {"queued_before": now - timedelta(seconds=timeout)}).all()
    results: dict[int | None, list[TryResult]] = defaultdict(list)
    for row in stuck:
        cause = (
            f"The try stayed queued longer than {timeout:g}s (MINISCHED_TASK_QUEUED_TIMEOUT): its message "
            f"was lost or no worker took it; failed by job {my_job_id}"
        )
        append_log_line(
            log_path_for(row.dag_id, row.run_id, row.task_id, row.try_number, row.map_index), cause
        )
        results[row.queued_by_job_id].append(
            TryResult.failed(
                row.id, row.try_number, cause, pid=os.getpid(), start_date=row.start_date, end_date=now
            )
        )
    finished: dict[RunKey, set[str]] = defaultdict(set)
    for job_id, failed in results.items():  # each under the job that claimed it (the compare-and-set)
        for key, tasks in finish(failed, job_id=job_id, session=session, cache=cache, now=now).items():
            finished[key] |= tasks
    return dict(finished)
