"""The scheduler's `job` row: registration, heartbeat, and the end of its life."""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from minisched.exceptions import MinischedError
from minisched.host import hostname
from minisched.models import Job, JobState

SCHEDULER_JOB_TYPE = "scheduler"
BACKFILL_JOB_TYPE = "backfill"
DAG_TEST_JOB_TYPE = "dag_test"
#: A `minisched celery worker`: it owns the tries it started, until it records their results.
CELERY_WORKER_JOB_TYPE = "celery_worker"
#: Job types that drive only the runs they created themselves.
RUN_OWNING_JOB_TYPES = (BACKFILL_JOB_TYPE, DAG_TEST_JOB_TYPE)
#: Job types whose loop heart-beats while tries run (a `dags test` runs each try inline instead).
HEARTBEATING_JOB_TYPES = frozenset({SCHEDULER_JOB_TYPE, BACKFILL_JOB_TYPE, CELERY_WORKER_JOB_TYPE})


def register_job(
    *, session: Session, now: datetime, job_type: str = SCHEDULER_JOB_TYPE, host: str | None = None
) -> int:
    """A new running job of this process; `host` names it when it is not this machine's name (a Celery
    worker's --hostname)."""
    result = session.execute(
        insert(Job)
        .values(
            job_type=job_type,
            state=JobState.RUNNING,
            hostname=host or hostname(),
            pid=os.getpid(),
            start_date=now,
            latest_heartbeat=now,
        )
        .returning(Job.id)
    )
    return int(result.scalar_one())


class JobDeclaredDead(MinischedError):
    """Another process found this job's heartbeat stale and recovered its tries."""


def heartbeat(job_id: int, *, session: Session, now: datetime) -> None:
    """Beat, unless another process has meanwhile declared this job dead: then stop at once, so that
    no try this job still runs overlaps the retry that the other process may have started."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING)
        .values(latest_heartbeat=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise JobDeclaredDead(
            f"job {job_id} was declared dead by another process (its heartbeat was older than the zombie "
            "threshold); stopping. Raise MINISCHED_ZOMBIE_THRESHOLD if the loop is legitimately slow"
        )


def end_job(job_id: int, state: JobState, *, session: Session, now: datetime) -> None:
    session.execute(
        update(Job).where(Job.id == job_id).values(state=state, end_date=now, latest_heartbeat=now)
    )
