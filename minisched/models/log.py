"""`log`: the audit trail of task-instance state changes and state-changing commands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import ID_LEN, Base
from minisched.models.types import UtcDateTime


class Log(Base):
    __tablename__ = "log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dttm: Mapped[datetime] = mapped_column(UtcDateTime)
    event: Mapped[str] = mapped_column(String(60))
    dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    task_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    try_number: Mapped[int | None] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(500))
    extra: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "dttm"), Index(None, "dag_id", "run_id", "task_id"))
