"""Write imported DAGs to `dag` and `serialized_dag` in a bounded number of statements.

A DAG whose serialized form did not change writes no `serialized_dag` row; `next_dagrun*` are computed
for new DAGs and recomputed only when a DAG's schedule changed or it comes back after being inactive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, Table, and_, func, select, update
from sqlalchemy.orm import Session

from minisched.models import DagModel, DagRun, DagRunType, SerializedDagModel, table_of
from minisched.models.types import utcnow

if TYPE_CHECKING:
    from minisched.authoring.schedules import DataInterval, Schedule

#: A DAG in the form `serialize_dag` gives and `serialized_dag.data` stores.
SerializedData = Mapping[str, Any]

#: The serialized keys that decide when runs are due; a change re-computes `next_dagrun*`.
SCHEDULE_KEYS = ("schedule", "timezone", "start_date", "end_date", "catchup")
NEXT_DAGRUN_COLUMNS = (
    "next_dagrun",
    "next_dagrun_data_interval_start",
    "next_dagrun_data_interval_end",
    "next_dagrun_create_after",
)
_DAG_COLUMNS = (
    "fileloc",
    "schedule",
    "timezone",
    "description",
    "max_active_runs",
    "max_active_tasks",
    "is_active",
    "last_parsed_time",
    "owners",
    "tags",
)


def next_dagrun_fields(  # noqa: PLR0917 -- positional, as the scheduler calls it after each run
    schedule: Schedule,
    start_date: datetime | None,
    end_date: datetime | None,
    catchup: bool,
    last_interval: DataInterval | None,
    now: datetime | None = None,
) -> dict[str, datetime | None]:
    """The `dag.next_dagrun*` values after `last_interval` (None: no scheduled run yet).

    The run for the interval may be created once the interval has ended, so `create_after` is its end.
    """
    info = schedule.next_dagrun_info(
        last_interval, start_date=start_date, end_date=end_date, catchup=catchup, now=now or utcnow()
    )
    if info is None:
        return dict.fromkeys(NEXT_DAGRUN_COLUMNS)
    return {
        "next_dagrun": info.start,
        "next_dagrun_data_interval_start": info.start,
        "next_dagrun_data_interval_end": info.end,
        "next_dagrun_create_after": info.end,
    }


@dataclass(frozen=True)
class StoredDag:
    """What the DB holds of a DAG that is about to be synced."""

    is_active: bool
    dag_hash: str | None
    schedule_key: tuple[Any, ...] | None


def sync_dags(dags: Sequence[SerializedData], *, session: Session, now: datetime | None = None) -> int:
    """Upsert the `dag` and `serialized_dag` rows of serialized `dags` (all active); returns how many."""
    by_id = {data["dag_id"]: data for data in dags}
    if not by_id:
        return 0
    now = now or utcnow()
    stored = _load_stored(by_id, session=session)
    _write_dag_rows(by_id, stored, now, session=session)
    _write_serialized(by_id, stored, now, session=session)
    return len(by_id)


def _write_dag_rows(
    by_id: Mapping[str, SerializedData], stored: Mapping[str, StoredDag], now: datetime, *, session: Session
) -> None:
    """Two upserts: DAGs whose `next_dagrun*` must be (re)computed, and all the others."""
    reschedule = {dag_id for dag_id, row in stored.items() if _needs_reschedule(row, by_id[dag_id])}
    last_intervals = latest_scheduled_intervals(sorted(reschedule), session=session)
    timed = {dag_id for dag_id in by_id if dag_id not in stored or dag_id in reschedule}
    timed_rows = [
        {**_dag_row(data, now), **_next_fields(data, last_intervals.get(dag_id), now)}
        for dag_id, data in by_id.items()
        if dag_id in timed
    ]
    plain_rows = [_dag_row(data, now) for dag_id, data in by_id.items() if dag_id not in timed]
    table = table_of(DagModel)
    upsert(session, table, timed_rows, key=["dag_id"], columns=[*_DAG_COLUMNS, *NEXT_DAGRUN_COLUMNS])
    upsert(session, table, plain_rows, key=["dag_id"], columns=_DAG_COLUMNS)


def _write_serialized(
    by_id: Mapping[str, SerializedData], stored: Mapping[str, StoredDag], now: datetime, *, session: Session
) -> None:
    """Only DAGs whose hash changed are written, so an unchanged DAG costs no write."""
    from minisched.authoring.serialize import dag_hash

    rows = []
    for dag_id, data in by_id.items():
        digest = dag_hash(dict(data))
        previous = stored.get(dag_id)
        if previous is None or previous.dag_hash != digest:
            row = {"dag_id": dag_id, "fileloc": data["fileloc"], "data": dict(data), "dag_hash": digest}
            rows.append({**row, "last_updated": now})
    upsert(session, table_of(SerializedDagModel), rows, key=["dag_id"])


def deactivate_dags(dag_ids: Iterable[str], *, session: Session) -> int:
    """Mark DAGs whose file (or whose definition in it) disappeared; their history stays."""
    ids = sorted(set(dag_ids))
    if not ids:
        return 0
    result = session.execute(
        update(DagModel)
        .where(DagModel.dag_id.in_(ids), DagModel.is_active)
        .values(is_active=False)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def latest_scheduled_intervals(dag_ids: Sequence[str], *, session: Session) -> dict[str, DataInterval]:
    """The data interval of each DAG's latest scheduled run, in one grouped query."""
    if not dag_ids:
        return {}
    from minisched.authoring.schedules import DataInterval

    latest = (
        select(DagRun.dag_id, func.max(DagRun.logical_date).label("logical_date"))
        .where(DagRun.dag_id.in_(sorted(dag_ids)), DagRun.run_type == DagRunType.SCHEDULED.value)
        .group_by(DagRun.dag_id)
        .subquery()
    )
    rows = session.execute(
        select(DagRun.dag_id, DagRun.logical_date, DagRun.data_interval_start, DagRun.data_interval_end).join(
            latest, and_(DagRun.dag_id == latest.c.dag_id, DagRun.logical_date == latest.c.logical_date)
        )
    )
    return {
        dag_id: DataInterval(start or logical_date, end or logical_date)
        for dag_id, logical_date, start, end in rows
    }


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    columns: Sequence[str] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE `columns` (default: all but the key), as one executemany.

    ON CONFLICT rather than insert-or-update keeps a concurrent refresh (CLI next to a scheduler) safe.
    """
    if not rows:
        return
    names = columns if columns is not None else [name for name in rows[0] if name not in key]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg_insert = postgresql.insert(table)
        excluded = pg_insert.excluded
        statement: Executable = pg_insert.on_conflict_do_update(
            index_elements=list(key), set_={name: excluded[name] for name in names}
        )
    else:
        from sqlalchemy.dialects import sqlite

        lite_insert = sqlite.insert(table)
        excluded = lite_insert.excluded
        statement = lite_insert.on_conflict_do_update(
            index_elements=list(key), set_={name: excluded[name] for name in names}
        )
    session.execute(statement, list(rows))


def _load_stored(dag_ids: Iterable[str], *, session: Session) -> dict[str, StoredDag]:
    rows = session.execute(
        select(DagModel.dag_id, DagModel.is_active, SerializedDagModel.dag_hash, SerializedDagModel.data)
        .outerjoin(SerializedDagModel, SerializedDagModel.dag_id == DagModel.dag_id)
        .where(DagModel.dag_id.in_(sorted(dag_ids)))
    )
    return {
        dag_id: StoredDag(bool(is_active), dag_hash, _schedule_key(data) if data is not None else None)
        for dag_id, is_active, dag_hash, data in rows
    }


def _needs_reschedule(row: StoredDag, data: Mapping[str, Any]) -> bool:
    """A changed schedule (or a DAG coming back) starts again from its latest scheduled run."""
    return not row.is_active or row.schedule_key != _schedule_key(data)


def _schedule_key(data: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(data.get(name) for name in SCHEDULE_KEYS)


def _dag_row(data: SerializedData, now: datetime) -> dict[str, Any]:
    return {
        "dag_id": data["dag_id"],
        "fileloc": data["fileloc"],
        "schedule": data["schedule"],
        "timezone": data["timezone"],
        "description": data["description"],
        "max_active_runs": data["max_active_runs"],
        "max_active_tasks": data["max_active_tasks"],
        "is_active": True,
        "last_parsed_time": now,
        "owners": data.get("owner"),
        "tags": json.dumps(list(data.get("tags") or ())),
        "is_paused": _paused_at_creation(data),
    }


def _next_fields(
    data: SerializedData, last_interval: DataInterval | None, now: datetime
) -> dict[str, datetime | None]:
    from minisched.authoring.serialize import deserialize_dag

    dag = deserialize_dag(dict(data))
    return next_dagrun_fields(dag.schedule, dag.start_date, dag.end_date, dag.catchup, last_interval, now)


def _paused_at_creation(data: SerializedData) -> bool:
    """Only used when the row is inserted; an existing DAG keeps its paused flag."""
    if data["is_paused_upon_creation"] is not None:
        return bool(data["is_paused_upon_creation"])
    from minisched.settings import get_settings

    return get_settings().dags_are_paused_at_creation
