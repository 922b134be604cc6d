"""DAGs as the API and the UI show them: the `dag` row, its owner and tags, whether its file is broken."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.models import DagModel, ImportError_, SerializedDagModel
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.service.actor import Actor, audit
from minisched.service.errors import NotFound
from minisched.service.paging import AnySelect, Page, order_clauses

ORDER_COLUMNS = {
    "dag_id": DagModel.dag_id,
    "is_paused": DagModel.is_paused,
    "next_dagrun": DagModel.next_dagrun,
    "last_parsed_time": DagModel.last_parsed_time,
    "fileloc": DagModel.fileloc,
}


class DagInfo(NamedTuple):
    """A named tuple, not a frozen dataclass: a page builds 100 of them, and a frozen dataclass's
    `__init__` sets each of its 17 fields through `object.__setattr__` (10x slower)."""

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


#: The `dag` columns a DagInfo starts with, in its field order.
_DAG_COLUMNS = (
    DagModel.dag_id,
    DagModel.fileloc,
    DagModel.is_paused,
    DagModel.is_active,
    DagModel.schedule,
    DagModel.timezone,
    DagModel.description,
    DagModel.max_active_runs,
    DagModel.max_active_tasks,
    DagModel.next_dagrun,
    DagModel.next_dagrun_data_interval_start,
    DagModel.next_dagrun_data_interval_end,
    DagModel.next_dagrun_create_after,
    DagModel.last_parsed_time,
)
#: Each DAG with its owner and tags (two keys of its stored JSON, not the whole document: a big DAG's
#: JSON costs more to read than its row) and whether its file is broken, in one statement.
_DAG_INFO = (
    select(
        *_DAG_COLUMNS,
        SerializedDagModel.data["owner"].as_string(),
        SerializedDagModel.data["tags"],
        exists().where(ImportError_.filename == DagModel.fileloc),
    )
    .select_from(DagModel)
    .outerjoin(SerializedDagModel, SerializedDagModel.dag_id == DagModel.dag_id)
)


def list_dags(
    *,
    session: Session,
    page: Page,
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    only_active: bool = True,
) -> tuple[list[DagInfo], int]:
    """One page of DAGs and how many match in all: two statements whatever the page size.

    Rows, not ORM objects, fetched by the Core: a list page is read-only, and building 100 mapped
    objects costs more than the query.
    """
    order_clauses(page, ORDER_COLUMNS, "dag_id")  # checks the page before anything is cached
    total, query = _dag_list_statements(page.order_by, paused, only_active, bool(dag_id_pattern))
    params = {"limit": page.limit, "offset": page.offset, "dag_id_like": _contains(dag_id_pattern or "")}
    connection = session.connection()
    count: int = connection.execute(total, params).scalar_one()
    return [_info(row) for row in connection.execute(query, params).all()], count


@functools.lru_cache(maxsize=128)
def _dag_list_statements(
    order_by: str | None, paused: bool | None, only_active: bool, filtered: bool
) -> tuple[Select[int], AnySelect]:
    """The count and page statements of `list_dags` for one shape of request, with the page and
    the pattern as bound parameters.

    Built once per shape: building a statement and its cache key again for each request cost more
    than running both on SQLite (the API's busiest read; issue 13).
    """
    conditions: list[ColumnElement[bool]] = []
    if only_active:
        conditions.append(DagModel.is_active.is_(True))
    if paused is not None:
        conditions.append(DagModel.is_paused == paused)
    if filtered:
        conditions.append(DagModel.dag_id.like(bindparam("dag_id_like"), escape="/"))
    matching = select(DagModel.dag_id).where(*conditions)
    total = select(func.count()).select_from(matching.subquery())
    # The page's ids first, then the details of those only: sorted together, every matching row's
    # JSON would be read before the sort.
    order = order_clauses(Page(order_by=order_by), ORDER_COLUMNS, "dag_id", (DagModel.dag_id,))
    shown = matching.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    return total, _DAG_INFO.where(DagModel.dag_id.in_(shown)).order_by(*order)


def _contains(text: str) -> str:
    """A LIKE pattern (escape character `/`) matching values that contain `text`."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def get_dag(dag_id: str, *, session: Session) -> DagInfo:
    row = session.execute(_DAG_INFO.where(DagModel.dag_id == dag_id)).first()
    if row is None:
        raise dag_not_found(dag_id)
    return _info(row)


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


def _info(row: Sequence[Any]) -> DagInfo:
    # Positional: the row holds the `dag` columns in DagInfo's field order (a page makes 100 of these).
    *columns, owner, tags, broken = row
    owners = tuple(o.strip() for o in owner.split(",")) if owner else ()
    return DagInfo._make(
        (*columns, owners, tuple(map(str, tags)) if isinstance(tags, list) else (), bool(broken))
    )
