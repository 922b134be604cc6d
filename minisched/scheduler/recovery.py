"""Recovering tries whose scheduler died: no task instance stays queued or running forever.

A scheduler job is dead when its heartbeat is older than the zombie threshold, or at once when it ran
on this host and its process is gone. Its in-flight tries are failed or retried per their retries
(the try was consumed when it was queued, so it is never run a second time under the same number).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, not_, or_, select, update
from sqlalchemy.orm import Session

from minisched.db.audit import event_row, record_events
from minisched.host import hostname
from minisched.models import Job, JobState, TaskInstance, TaskInstanceState
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.executors.base import TryResult
from minisched.scheduler.executors.logs import append_log_line
from minisched.scheduler.job import HEARTBEATING_JOB_TYPES
from minisched.scheduler.results import record_results

log = logging.getLogger(__name__)
S = TaskInstanceState
RunKey = tuple[str, str]
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
    rows = session.execute(
        select(Job.id, Job.job_type, Job.hostname, Job.pid, Job.latest_heartbeat).where(
            Job.state == JobState.RUNNING, Job.id != my_job_id
        )
    )
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
        session.execute(
            update(Job)
            .where(Job.id.in_(dead), Job.state == JobState.RUNNING)
            .values(state=JobState.FAILED, end_date=now)
            .execution_options(synchronize_session=False)
        )
        for job_id in dead:
            log.warning(
                "scheduler job %s is dead (no heartbeat or process gone); recovering its tries", job_id
            )
    live_jobs = select(Job.id).where(Job.state == JobState.RUNNING)
    orphans = session.execute(
        select(
            TaskInstance.id,
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.try_number,
            TaskInstance.queued_by_job_id,
            TaskInstance.start_date,
        ).where(
            TaskInstance.state.in_([S.QUEUED, S.RUNNING]),
            or_(
                TaskInstance.queued_by_job_id.is_(None),
                and_(
                    TaskInstance.queued_by_job_id != my_job_id,
                    not_(TaskInstance.queued_by_job_id.in_(live_jobs)),
                ),
            ),
        )
    ).all()
    if not orphans:
        return {}
    results = []
    host = hostname()
    for row in orphans:
        cause = (
            f"The scheduler (job {row.queued_by_job_id}) that ran this try died before it finished; "
            f"recovered by job {my_job_id}"
        )
        append_log_line(log_path_for(row.dag_id, row.run_id, row.task_id, row.try_number), cause)
        results.append(
            TryResult(
                ti_id=row.id,
                try_number=row.try_number,
                outcome="failed",
                start_date=row.start_date or now,
                end_date=now,
                hostname=host,
                pid=os.getpid(),
                error=cause,
            )
        )
    finished = record_results(results, session=session, cache=cache, now=now)
    record_events(
        [
            event_row(
                "orphan_recovered",
                extra={"task_instances": len(results), "dead_jobs": dead},
                owner="scheduler",
            )
        ],
        session=session,
    )
    return finished
