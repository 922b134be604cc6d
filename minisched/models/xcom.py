"""`xcom`: small JSON values one task instance hands to the next; they go with their dag run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import ID_LEN, Base
from minisched.models.types import UtcDateTime

#: `map_index` of a value pushed by a task instance that is not mapped.
NOT_MAPPED = -1


class XCom(Base):
    __tablename__ = "xcom"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    map_index: Mapped[int] = mapped_column(Integer, default=NOT_MAPPED, server_default=str(NOT_MAPPED))
    key: Mapped[str] = mapped_column(String(512))
    value: Mapped[Any] = mapped_column(JSON)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        # Also the index for pulls and for clearing a task instance's values (its leading columns).
        UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "key"),
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
    )
