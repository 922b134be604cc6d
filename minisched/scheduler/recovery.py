"""Recovering the tries of dead jobs: no task instance stays queued or running forever.

A scheduler job is dead when its heartbeat is older than the zombie threshold, or at once when it ran
on this host and its process is gone. Recovery marks it failed, then reaps its in-flight tries
(`transitions.reap`): failed or retried per their retries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from minisched.db.audit import event_row, record_events
from minisched.host import hostname
from minisched.models import RunKey
from minisched.scheduler import statements as sql
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.job import HEARTBEATING_JOB_TYPES
from minisched.scheduler.transitions import reap

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
    log_path_for: Callable[[str, str, str, int], Path],
) -> dict[RunKey, set[str]]:
    """Fail dead schedulers' jobs and fail/retry their in-flight tries; returns the tasks that finished."""
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
    return finished
