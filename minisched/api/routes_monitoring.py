"""/health and /version (no token needed), /importErrors and /eventLogs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request

from minisched.api import convert, schemas
from minisched.api.deps import PageDep, RowId, SessionDep, Viewer
from minisched.api.problems import ERROR_RESPONSES
from minisched.service import events

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/health", response_model=schemas.HealthInfo, tags=["Monitoring"])
def get_health() -> schemas.HealthInfo:
    from minisched.service.health import check_health

    health = check_health()
    return schemas.HealthInfo(
        metadatabase=schemas.HealthStatus(status="healthy" if health.metadatabase_healthy else "unhealthy"),
        scheduler=schemas.SchedulerStatus(
            status="healthy" if health.scheduler_healthy else "unhealthy",
            latest_scheduler_heartbeat=health.latest_scheduler_heartbeat,
        ),
    )


@router.get("/version", response_model=schemas.VersionInfo, tags=["Monitoring"])
async def get_version(request: Request) -> schemas.VersionInfo:
    # The version `create_app` read once: reading the package metadata for each request cost more
    # than the rest of it, and a sync handler adds a trip to a worker thread.
    return schemas.VersionInfo(version=request.app.version)


@router.get("/importErrors", response_model=schemas.ImportErrorCollection, tags=["ImportError"])
def get_import_errors(session: SessionDep, page: PageDep, _actor: Viewer) -> schemas.ImportErrorCollection:
    rows, total = events.list_import_errors(session=session, page=page)
    return schemas.ImportErrorCollection(
        import_errors=[convert.import_error(row) for row in rows], total_entries=total
    )


@router.get("/importErrors/{import_error_id}", response_model=schemas.DagImportError, tags=["ImportError"])
def get_import_error(import_error_id: RowId, session: SessionDep, _actor: Viewer) -> schemas.DagImportError:
    return convert.import_error(events.get_import_error(import_error_id, session=session))


@router.get("/eventLogs", response_model=schemas.EventLogCollection, tags=["EventLog"])
def get_event_logs(
    *,
    session: SessionDep,
    page: PageDep,
    _actor: Viewer,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    event: str | None = None,
    owner: str | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
) -> schemas.EventLogCollection:
    rows, total = events.list_events(
        session=session,
        page=page,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        event=event,
        owner=owner,
        before=before,
        after=after,
    )
    return schemas.EventLogCollection(
        event_logs=[convert.event_log(row) for row in rows], total_entries=total
    )


@router.get("/eventLogs/{event_log_id}", response_model=schemas.EventLog, tags=["EventLog"])
def get_event_log(event_log_id: RowId, session: SessionDep, _actor: Viewer) -> schemas.EventLog:
    return convert.event_log(events.get_event(event_log_id, session=session))
