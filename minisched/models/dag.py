"""`dag` (one row per DAG seen in a DAG file) and `serialized_dag` (its structure as JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import ID_LEN, Base
from minisched.models.types import UtcDateTime


class DagModel(Base):
    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    fileloc: Mapped[str] = mapped_column(String(2000))
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    schedule: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    description: Mapped[str | None] = mapped_column(Text)
    max_active_runs: Mapped[int] = mapped_column(Integer, default=16)
    max_active_tasks: Mapped[int] = mapped_column(Integer, default=16)
    next_dagrun: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_create_after: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_parsed_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The DAG's `owner` text ("a, b") and its tags as a JSON list, copied from its definition at parse
    #: time: the DAG list shows them, and reading them out of `serialized_dag`'s JSON cost a third of it.
    owners: Mapped[str | None] = mapped_column(String(2000))
    tags: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(None, "is_active", "is_paused", "next_dagrun_create_after"),
        # The DAG list's order: its page of active DAGs is read in order, not sorted (issue 13).
        Index(None, "is_active", "dag_id"),
    )


class SerializedDagModel(Base):
    __tablename__ = "serialized_dag"

    dag_id: Mapped[str] = mapped_column(
        String(ID_LEN), ForeignKey("dag.dag_id", ondelete="CASCADE"), primary_key=True
    )
    fileloc: Mapped[str] = mapped_column(String(2000))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    dag_hash: Mapped[str] = mapped_column(String(64))
    last_updated: Mapped[datetime] = mapped_column(UtcDateTime)
