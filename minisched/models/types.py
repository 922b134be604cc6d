"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

_from_text = datetime.fromisoformat


class UtcDateTime(TypeDecorator[datetime]):
    """A datetime that is stored in UTC and always read back timezone-aware, on every backend.

    PostgreSQL gets `timestamp with time zone`; SQLite has no time zones, so it gets naive UTC values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware datetime (UTC)")
        utc: datetime = value.astimezone(UTC)
        # SQLite compares datetimes as text: store one naive-UTC format so comparisons stay correct.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, the stored text is parsed as UTC in one C call: every datetime read from SQLite
        goes through here, and the generic path (parse, then `replace(tzinfo=UTC)`) costs 20x more."""
        if dialect.name == "sqlite":
            return as_utc
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


def as_utc(value: Any) -> datetime | None:
    """A UtcDateTime column's value as a driver returns it -> an aware UTC datetime: naive UTC text as
    SQLAlchemy writes it on SQLite (`2024-01-01 00:00:00.000000`), or a datetime (PostgreSQL)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return _from_text(value + "+00:00")
        except ValueError:  # text written with an offset, by hand or another tool
            value = _from_text(value)
    stored: datetime = value
    return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
