"""`job`: a running scheduler (or other long-lived process) and its heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import Base
from minisched.models.types import UtcDateTime

SCHEDULER_JOB_TYPE = "scheduler"
BACKFILL_JOB_TYPE = "backfill"
DAG_TEST_JOB_TYPE = "dag_test"
#: A `minisched celery worker`: it owns the tries it started, until it records their results.
CELERY_WORKER_JOB_TYPE = "celery_worker"
#: Job types that drive only the runs they created themselves.
RUN_OWNING_JOB_TYPES = (BACKFILL_JOB_TYPE, DAG_TEST_JOB_TYPE)
#: Job types whose loop heart-beats while tries run (a `dags test` runs each try inline instead).
HEARTBEATING_JOB_TYPES = frozenset({SCHEDULER_JOB_TYPE, BACKFILL_JOB_TYPE, CELERY_WORKER_JOB_TYPE})


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_type: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    hostname: Mapped[str] = mapped_column(String(500))
    pid: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[datetime] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    latest_heartbeat: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "job_type", "state", "latest_heartbeat"),)
