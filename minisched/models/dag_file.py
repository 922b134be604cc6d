"""`dag_file`: what the loader last saw of each DAG file, so unchanged files are not imported again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import Base
from minisched.models.types import UtcDateTime


class DagFile(Base):
    __tablename__ = "dag_file"

    fileloc: Mapped[str] = mapped_column(String(2000), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    mtime: Mapped[float] = mapped_column(Float)
    dag_ids: Mapped[list[str]] = mapped_column(JSON)
    last_parsed_time: Mapped[datetime] = mapped_column(UtcDateTime)
