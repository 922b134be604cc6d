"""The scheduler's `job` row: registration, heartbeat, and the end of its life (the statements are in
`statements`; the job types in `models.job`)."""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy.orm import Session

from minisched.exceptions import MinischedError
from minisched.host import hostname
from minisched.models import JobState
from minisched.models.job import SCHEDULER_JOB_TYPE
from minisched.scheduler import statements as sql


def register_job(
    *, session: Session, now: datetime, job_type: str = SCHEDULER_JOB_TYPE, host: str | None = None
) -> int:
    """A new running job of this process; `host` names it when it is not this machine's name (a Celery
    worker's --hostname)."""
    values = {
        "job_type": job_type,
        "state": JobState.RUNNING,
        "hostname": host or hostname(),
        "pid": os.getpid(),
        "start_date": now,
        "latest_heartbeat": now,
    }
    return int(session.execute(sql.REGISTER_JOB, values).scalar_one())


class JobDeclaredDead(MinischedError):
    """Another process found this job's heartbeat stale and recovered its tries."""


def heartbeat(job_id: int, *, session: Session, now: datetime) -> None:
    """Beat, unless another process has meanwhile declared this job dead: then stop at once, so that
    no try this job still runs overlaps the retry that the other process may have started."""
    result = session.execute(sql.HEARTBEAT, {"job_id": job_id, "now": now})
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise JobDeclaredDead(
            f"job {job_id} was declared dead by another process (its heartbeat was older than the zombie "
            "threshold); stopping. Raise MINISCHED_ZOMBIE_THRESHOLD if the loop is legitimately slow"
        )


def end_job(job_id: int, state: JobState, *, session: Session, now: datetime) -> None:
    session.execute(sql.END_JOB, {"job_id": job_id, "state": state, "now": now})
