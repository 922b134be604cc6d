"""`job`: a running scheduler (or other long-lived process) and its heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import Base
from minisched.models.types import UtcDateTime


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
