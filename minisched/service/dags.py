"""DAGs as the API and the UI show them: the `dag` row, its owner and tags, whether its file is broken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.models import DagModel, ImportError_, SerializedDagModel
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.service.actor import Actor, audit
from minisched.service.errors import NotFound
from minisched.service.paging import Page, count, ordered

ORDER_COLUMNS = {
    "dag_id": DagModel.dag_id,
    "is_paused": DagModel.is_paused,
    "next_dagrun": DagModel.next_dagrun,
    "last_parsed_time": DagModel.last_parsed_time,
    "fileloc": DagModel.fileloc,
}


@dataclass(frozen=True)
class DagInfo:
    dag_id: str
    fileloc: str
    is_paused: bool
    is_active: bool
    schedule: str | None
    timezone: str
    description: str | None
    max_active_runs: int
    max_active_tasks: int
    next_dagrun: datetime | None
    next_dagrun_data_interval_start: datetime | None
    next_dagrun_data_interval_end: datetime | None
    next_dagrun_create_after: datetime | None
    last_parsed_time: datetime | None
    owners: tuple[str, ...]
    tags: tuple[str, ...]
    has_import_errors: bool


def list_dags(
    *,
    session: Session,
    page: Page,
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    only_active: bool = True,
) -> tuple[list[DagInfo], int]:
    """One page of DAGs and how many match in all: three statements whatever the page size."""
    query = select(DagModel)
    if only_active:
        query = query.where(DagModel.is_active)
    if paused is not None:
        query = query.where(DagModel.is_paused == paused)
    if dag_id_pattern:
        query = query.where(DagModel.dag_id.contains(dag_id_pattern, autoescape=True))
    total = count(query, session=session)
    rows = list(session.scalars(ordered(query, page, ORDER_COLUMNS, "dag_id", (DagModel.dag_id,))))
    return _with_details(rows, session=session), total


def get_dag(dag_id: str, *, session: Session) -> DagInfo:
    row = session.get(DagModel, dag_id)
    if row is None:
        raise dag_not_found(dag_id)
    return _with_details([row], session=session)[0]


def get_structure(dag_id: str, *, session: Session) -> SerializedDag:
    """The DAG's tasks and dependencies as the scheduler last stored them."""
    dag = DagStructureCache().get(dag_id, session=session)
    if dag is None:
        raise dag_not_found(dag_id)
    return dag


def dag_not_found(dag_id: str) -> NotFound:
    return NotFound(f"DAG {dag_id!r} not found; GET /api/v1/dags lists the DAGs")


def set_paused(dag_id: str, paused: bool, *, actor: Actor, session: Session) -> DagInfo:
    changed = session.execute(
        update(DagModel)
        .where(DagModel.dag_id == dag_id)
        .values(is_paused=paused)
        .execution_options(synchronize_session=False)
    )
    if not getattr(changed, "rowcount", 0):
        raise dag_not_found(dag_id)
    audit(
        actor, "pause" if paused else "unpause", session=session, dag_id=dag_id, extra={"is_paused": paused}
    )
    session.expire_all()
    return get_dag(dag_id, session=session)


def _with_details(rows: list[DagModel], *, session: Session) -> list[DagInfo]:
    if not rows:
        return []
    ids = [row.dag_id for row in rows]
    stored = {
        dag_id: data
        for dag_id, data in session.execute(
            select(SerializedDagModel.dag_id, SerializedDagModel.data).where(
                SerializedDagModel.dag_id.in_(ids)
            )
        )
    }
    broken = set(
        session.scalars(
            select(ImportError_.filename).where(ImportError_.filename.in_({r.fileloc for r in rows}))
        )
    )
    return [_info(row, stored.get(row.dag_id) or {}, row.fileloc in broken) for row in rows]


def _info(row: DagModel, data: dict[str, object], broken: bool) -> DagInfo:
    owner = data.get("owner")
    tags = data.get("tags")
    return DagInfo(
        dag_id=row.dag_id,
        fileloc=row.fileloc,
        is_paused=bool(row.is_paused),
        is_active=bool(row.is_active),
        schedule=row.schedule,
        timezone=row.timezone,
        description=row.description,
        max_active_runs=row.max_active_runs,
        max_active_tasks=row.max_active_tasks,
        next_dagrun=row.next_dagrun,
        next_dagrun_data_interval_start=row.next_dagrun_data_interval_start,
        next_dagrun_data_interval_end=row.next_dagrun_data_interval_end,
        next_dagrun_create_after=row.next_dagrun_create_after,
        last_parsed_time=row.last_parsed_time,
        owners=tuple(str(o).strip() for o in str(owner).split(",")) if owner else (),
        tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
        has_import_errors=broken,
    )
