"""DAGs as the API and the UI show them: the `dag` row, its owner and tags, whether its file is broken."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    bindparam,
    cast,
    exists,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from minisched.authoring.serialize import SerializedDag
from minisched.models import DagModel, ImportError_
from minisched.models.types import as_utc
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.service.actor import Actor, audit
from minisched.service.errors import NotFound
from minisched.service.paging import AnySelect, Page, check_page, order_clauses

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


#: The `dag` columns a DagInfo is made of, in its field order, then whether the DAG's file is broken.
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
    DagModel.owners,
    DagModel.tags,
    exists().where(ImportError_.filename == DagModel.fileloc),
)
#: Those columns as the driver returns them, untyped (SQLite: datetimes as text, booleans as 0/1),
#: made a DagInfo by `dag_info` (`get_dag`).
_DAG_INFO = select(*(type_coerce(column, NullType()) for column in _DAG_COLUMNS)).select_from(DagModel)

#: A DAG in a list: its `_DAG_COLUMNS` as one JSON array, written by the database (`_dag_json`),
#: made a DagInfo by `raw_dag_info` only when needed. Hashable, and equal for two reads of an
#: unchanged DAG: the API's DAG list keeps each DAG's JSON by it and converts only DAGs it has not
#: seen (api/convert.py).
RawDag = str


def _dag_json(dialect: str) -> ColumnElement[Any]:
    """`_DAG_COLUMNS` as one text value. One value a row, not 17: Python 3.11's sqlite3 module
    releases and retakes the GIL for each value it fetches, which cost about as much as SQLite's
    own work on the page (issue 13; benchmarks/README.md)."""
    if dialect == "postgresql":  # as text: psycopg would parse a `json` value into a list
        return cast(func.json_build_array(*_DAG_COLUMNS), Text)
    return type_coerce(func.json_array(*_DAG_COLUMNS), NullType())


def list_dags(
    *,
    session: Session,
    page: Page,
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    only_active: bool = True,
) -> tuple[list[DagInfo], int]:
    """One page of DAGs and how many match in all: one statement whatever the page size (two when
    the page is past the end)."""
    rows, count = list_raw_dags(
        session.connection(), page=page, paused=paused, dag_id_pattern=dag_id_pattern, only_active=only_active
    )
    return [raw_dag_info(row) for row in rows], count


def list_raw_dags(
    connection: Connection,
    *,
    page: Page,
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    only_active: bool = True,
) -> tuple[list[RawDag], int]:
    """`list_dags` on a Core connection (`read_connection`), each DAG as the database wrote it
    (`raw_dag_info` converts one).

    Rows, not ORM objects, fetched by the Core: a list page is read-only, and building 100 mapped
    objects costs more than the query. Each row carries the count of all matching DAGs as a last
    column, so a page is one statement (one snapshot, no BEGIN needed on SQLite); only an empty page
    past the end asks for the count on its own.
    """
    check_page(page, ORDER_COLUMNS, "dag_id")  # before anything is cached
    total, query = _dag_list_statements(
        connection.dialect.name, page.order_by, paused, only_active, bool(dag_id_pattern)
    )
    params = {"limit": page.limit, "offset": page.offset, "dag_id_like": _contains(dag_id_pattern or "")}
    fetched = connection.execute(query, params).all()
    if fetched:
        return [row[0] for row in fetched], fetched[0][1]
    count: int = connection.execute(total, params).scalar_one() if page.offset else 0
    return [], count


@functools.lru_cache(maxsize=128)
def _dag_list_statements(
    dialect: str, order_by: str | None, paused: bool | None, only_active: bool, filtered: bool
) -> tuple[Select[int], AnySelect]:
    """The count statement, and the page statement (each row followed by the count), of
    `list_dags` for one shape of request, with the page and the pattern as bound parameters.

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
    # Ties broken by dag_id, which is unique: itself needs none (a second `dag_id` in the ORDER BY
    # kept SQLite from reading the index in order).
    by_id = (order_by or "dag_id").removeprefix("-") == "dag_id"
    order = order_clauses(
        Page(order_by=order_by), ORDER_COLUMNS, "dag_id", () if by_id else (DagModel.dag_id,)
    )
    count = total.scalar_subquery()
    if by_id:
        # Read in order from an index (`dag (is_active, dag_id)`, or the key), stopping at the page.
        page = select(_dag_json(dialect), count).where(*conditions).limit(bindparam("limit"))
        return total, page.offset(bindparam("offset")).order_by(*order)
    # Any other order sorts: the page's ids first, then the details of those only (sorted together,
    # every matching row's JSON and import-error check would be made before the sort).
    shown = matching.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    page = select(_dag_json(dialect), count).where(DagModel.dag_id.in_(shown))
    return total, page.order_by(*order)


def _contains(text: str) -> str:
    """A LIKE pattern (escape character `/`) matching values that contain `text`."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def get_dag(dag_id: str, *, session: Session) -> DagInfo:
    row = session.execute(_DAG_INFO.where(DagModel.dag_id == dag_id)).first()
    if row is None:
        raise dag_not_found(dag_id)
    return dag_info(tuple(row))


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


def raw_dag_info(raw: RawDag) -> DagInfo:
    """A DAG of `list_raw_dags` -> a DagInfo. JSON's values are the driver's (SQLite: datetimes as
    text, booleans as 0/1); on PostgreSQL datetimes are ISO text with an offset."""
    import orjson

    return dag_info(orjson.loads(raw))


def dag_info(row: Sequence[Any]) -> DagInfo:
    """A row of `_DAG_INFO` (driver values, in DagInfo's field order) -> a DagInfo."""
    (dag_id, fileloc, paused, active, schedule, timezone, description, runs, tasks) = row[:9]
    next_run, start, end, create_after, parsed, owner, tags, broken = row[9:]
    return DagInfo(
        dag_id,
        fileloc,
        bool(paused),
        bool(active),
        schedule,
        timezone,
        description,
        runs,
        tasks,
        as_utc(next_run),
        as_utc(start),
        as_utc(end),
        as_utc(create_after),
        as_utc(parsed),
        owners=tuple(o.strip() for o in owner.split(",")) if owner else (),
        tags=tuple(map(str, json.loads(tags))) if tags else (),
        has_import_errors=bool(broken),
    )
