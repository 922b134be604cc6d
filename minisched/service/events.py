"""The audit log (`log` rows) and the import errors, as pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minisched.models import ImportError_, Log
from minisched.service.dates import as_utc
from minisched.service.errors import NotFound
from minisched.service.paging import Page, count, ordered

EVENT_ORDER = {
    "event_log_id": Log.id,
    "when": Log.dttm,
    "dttm": Log.dttm,
    "dag_id": Log.dag_id,
    "task_id": Log.task_id,
    "run_id": Log.run_id,
    "event": Log.event,
    "owner": Log.owner,
}
IMPORT_ERROR_ORDER = {
    "import_error_id": ImportError_.id,
    "filename": ImportError_.filename,
    "timestamp": ImportError_.timestamp,
}


def list_events(
    *,
    session: Session,
    page: Page,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    event: str | None = None,
    owner: str | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
) -> tuple[list[Log], int]:
    query = select(Log)
    for column, value in ((Log.dag_id, dag_id), (Log.task_id, task_id), (Log.run_id, run_id)):
        if value is not None:
            query = query.where(column == value)
    if event is not None:
        query = query.where(Log.event == event)
    if owner is not None:
        query = query.where(Log.owner == owner)
    if before is not None:
        query = query.where(Log.dttm < as_utc(before))
    if after is not None:
        query = query.where(Log.dttm > as_utc(after))
    total = count(query, session=session)
    return list(session.scalars(ordered(query, page, EVENT_ORDER, "-event_log_id", (Log.id.desc(),)))), total


def get_event(event_log_id: int, *, session: Session) -> Log:
    row = session.get(Log, event_log_id)
    if row is None:
        raise NotFound(f"no event log {event_log_id}")
    return row


def list_import_errors(*, session: Session, page: Page) -> tuple[list[ImportError_], int]:
    query = select(ImportError_)
    total = count(query, session=session)
    rows = session.scalars(ordered(query, page, IMPORT_ERROR_ORDER, "filename", (ImportError_.id,)))
    return list(rows), total


def get_import_error(import_error_id: int, *, session: Session) -> ImportError_:
    row = session.get(ImportError_, import_error_id)
    if row is None:
        raise NotFound(f"no import error {import_error_id}")
    return row


def import_error_count(*, session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ImportError_)) or 0)
