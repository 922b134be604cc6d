"""Is the metadata database reachable, and is a scheduler heart-beating? (`GET /health`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from minisched.models import Job, JobState
from minisched.models.job import SCHEDULER_JOB_TYPE
from minisched.models.types import utcnow


@dataclass(frozen=True)
class Health:
    metadatabase_healthy: bool
    scheduler_healthy: bool
    latest_scheduler_heartbeat: datetime | None


def check_health() -> Health:
    """A scheduler is healthy when a running one beat within the zombie threshold (Airflow's rule)."""
    from minisched.db.session import create_session
    from minisched.settings import get_settings

    try:
        with create_session() as session:
            latest = session.scalar(
                select(func.max(Job.latest_heartbeat)).where(
                    Job.job_type == SCHEDULER_JOB_TYPE, Job.state == JobState.RUNNING
                )
            )
    except SQLAlchemyError:
        return Health(False, False, None)
    threshold = timedelta(seconds=get_settings().zombie_threshold)
    return Health(True, latest is not None and utcnow() - latest <= threshold, latest)
