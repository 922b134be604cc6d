"""`slot_pool`: named limits on how many task slots may run at once. Occupancy is derived, never stored."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import Base

DEFAULT_POOL_NAME = "default_pool"
DEFAULT_POOL_SLOTS = 128


class Pool(Base):
    __tablename__ = "slot_pool"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool: Mapped[str] = mapped_column(String(256), unique=True)
    slots: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(Text)
