"""Dates from callers: without an offset a date is read as UTC, as Airflow does (the tables hold UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from minisched.service.errors import InvalidInput


def as_utc(moment: datetime) -> datetime:
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"date {moment.isoformat()} is out of range once converted to UTC") from None


def as_utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)
