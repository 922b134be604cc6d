"""The audit trail: one `log` row per task-instance state change and per state-changing command."""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert
from sqlalchemy.orm import Session

from minisched.models import Log, table_of
from minisched.models.types import utcnow
from minisched.settings import mask_secrets

_SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")


def current_owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def mask_extra(value: Any, key: str = "") -> Any:
    """Mask secrets in a JSON-able value: values under secret-looking keys, and passwords inside URLs."""
    if any(part in key.lower() for part in _SECRET_KEY_PARTS) and value not in (None, ""):
        return "***"
    if isinstance(value, Mapping):
        return {str(k): mask_extra(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_extra(item) for item in value]
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def event_row(
    event: str,
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    try_number: int | None = None,
    extra: Mapping[str, Any] | None = None,
    owner: str | None = None,
    dttm: datetime | None = None,
) -> dict[str, Any]:
    return {
        "dttm": dttm or utcnow(),
        "event": event,
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "try_number": try_number,
        "owner": owner if owner is not None else current_owner(),
        "extra": json.dumps(mask_extra(extra), sort_keys=True, default=str) if extra is not None else None,
    }


_BUFFER_KEY = "minisched_event_buffer"
#: Core INSERT (not the ORM bulk path): the scheduler inserts its log rows with it every loop.
_INSERT_LOG = insert(table_of(Log))


class TaskInstanceKey(Protocol):
    @property
    def dag_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...


def ti_event(
    state: str, ti: TaskInstanceKey, try_number: int, dttm: datetime, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `log` row of a task-instance state change made by the scheduler (event = the new state)."""
    return event_row(
        state,
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=try_number,
        owner="scheduler",
        dttm=dttm,
        extra=extra,
    )


def record_events(rows: Iterable[Mapping[str, Any]], *, session: Session) -> None:
    """Insert prepared `event_row`s in one statement, or add them to the session's open buffer."""
    buffer = session.info.get(_BUFFER_KEY)
    if buffer is not None:
        buffer.extend(rows)
        return
    batch = list(rows)
    if batch:
        session.execute(_INSERT_LOG, batch)


@contextlib.contextmanager
def buffered_events(session: Session) -> Iterator[None]:
    """Collect every event recorded inside the block and insert them all in one statement at its end.

    The scheduler wraps each iteration in this, so its log rows cost one INSERT per loop, not one per step.
    """
    buffer: list[Mapping[str, Any]] = []
    session.info[_BUFFER_KEY] = buffer
    try:
        yield
    finally:
        del session.info[_BUFFER_KEY]
    if buffer:
        session.execute(_INSERT_LOG, buffer)


def record_event(event: str, *, session: Session, **fields: Any) -> None:
    record_events([event_row(event, **fields)], session=session)
