"""`task_log`: a try's log as shipped by a remote worker, in pieces, so it reads the same from anywhere.

A worker on another machine writes its try's log to its own disk, and appends each new piece here
(keyed by its byte offset in that file, so a piece sent twice is stored once). Local executors leave
this table empty: their log files are on the scheduler's disk already.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import ID_LEN, Base
from minisched.models.types import UtcDateTime
from minisched.models.xcom import NOT_MAPPED


class TaskLog(Base):
    __tablename__ = "task_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    map_index: Mapped[int] = mapped_column(Integer, default=NOT_MAPPED, server_default=str(NOT_MAPPED))
    try_number: Mapped[int] = mapped_column(Integer)
    #: Where this piece starts in the worker's log file, in bytes.
    chunk_offset: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    hostname: Mapped[str] = mapped_column(String(1000))
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        # Named here: the convention's name would be longer than PostgreSQL's 63 characters.
        UniqueConstraint(
            "dag_id",
            "run_id",
            "task_id",
            "map_index",
            "try_number",
            "chunk_offset",
            name="uq_task_log_try_piece",
        ),
        # The log goes with its run (db clean, a deleted run).
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
    )
