"""Rows and service objects -> the API's response bodies."""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta
from typing import Any

from starlette.responses import Response

from minisched.api import schemas
from minisched.authoring.serialize import SerializedTask
from minisched.models import DagRun, ImportError_, Log, TaskInstance
from minisched.pools import PoolUsage
from minisched.scheduler.clear import ClearableTi
from minisched.service.dags import DagInfo, RawDag, raw_dag_info


def dag_document(info: DagInfo) -> dict[str, Any]:
    """A DAG as `schemas.DAG` serializes it, in its field order, as plain data for `json_response`.

    Plain data, not the pydantic model: `GET /dags` answers 100 of them a page, and building and then
    re-validating 100 models cost more than the query (see benchmarks/README.md, issue 13).
    """
    return {
        "dag_id": info.dag_id,
        "dag_display_name": info.dag_id,
        "root_dag_id": None,
        "is_paused": info.is_paused,
        "is_active": info.is_active,
        "is_subdag": False,
        "last_parsed_time": info.last_parsed_time,
        "last_pickled": None,
        "last_expired": None,
        "scheduler_lock": None,
        "pickle_id": None,
        "default_view": "grid",
        "fileloc": info.fileloc,
        "file_token": file_token(info.fileloc),
        "owners": list(info.owners),
        "description": info.description,
        "schedule_interval": schedule_interval(info.schedule),
        "timetable_description": info.schedule,
        "tags": [{"name": tag} for tag in info.tags],
        "max_active_tasks": info.max_active_tasks,
        "max_active_runs": info.max_active_runs,
        "has_task_concurrency_limits": False,
        "has_import_errors": info.has_import_errors,
        "next_dagrun": info.next_dagrun,
        "next_dagrun_data_interval_start": info.next_dagrun_data_interval_start,
        "next_dagrun_data_interval_end": info.next_dagrun_data_interval_end,
        "next_dagrun_create_after": info.next_dagrun_create_after,
    }


#: The JSON of each DAG row seen lately, by the row's values (`dags.RawDag`, all of them in one text):
#: a DAG's document is a function of its row alone, so an unchanged row is not converted again, and
#: a changed one (new `next_dagrun`, paused, re-parsed...) is a new key. Emptied when full.
_DAG_JSON: dict[RawDag, bytes] = {}
MAX_REMEMBERED_DAGS = 10_000


def dag_list_json(rows: list[RawDag], total: int) -> bytes:
    """`{"dags": [...], "total_entries": total}` as `json_response` writes it, made of each row's JSON.

    Converting a page of 100 rows (datetimes parsed, documents built, then serialized) cost twice
    what the query does on SQLite; a row already seen costs one dict lookup (issue 13).
    """
    remembered = _DAG_JSON
    parts = []
    for row in rows:
        part = remembered.get(row)
        if part is None:
            if len(remembered) >= MAX_REMEMBERED_DAGS:
                remembered.clear()
            part = remembered[row] = _dumps(dag_document(raw_dag_info(row)))
        parts.append(part)
    return b'{"dags":[' + b",".join(parts) + b'],"total_entries":' + str(total).encode() + b"}"


@functools.lru_cache(maxsize=4096)
def file_token(fileloc: str) -> str:
    return hashlib.sha256(fileloc.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=1024)
def schedule_interval(schedule: str | None) -> dict[str, Any] | None:
    """Airflow's tagged union, serialized: a cron expression or preset, or a TimeDelta for a delta
    schedule.

    Remembered per text: a list of DAGs holds few distinct schedules, and parsing a cron expression
    costs more than the rest of a DAG's conversion. Callers must not change the dict.
    """
    if schedule is None:
        return None
    from minisched.authoring.schedules import DeltaSchedule, make_schedule

    try:
        parsed = make_schedule(schedule)
    except ValueError:
        parsed = None
    if isinstance(parsed, DeltaSchedule):
        delta = parsed.delta
        value = schemas.ScheduleInterval(
            type="TimeDelta", days=delta.days, seconds=delta.seconds, microseconds=delta.microseconds
        )
    else:
        value = schemas.ScheduleInterval(type="CronExpression", value=schedule)
    return value.model_dump(mode="json", by_alias=True)


def json_response(document: Any) -> Response:
    """`document` as JSON, returned as is: FastAPI validates and serializes again whatever else a
    handler returns, which for a page of 100 DAGs costs as much as the rest of the request.

    orjson writes datetimes as pydantic does (UTC as `Z`, microseconds only when non-zero) and is
    3x faster than pydantic_core's `to_json` on a page of DAGs (0.2 ms against 0.6 ms).
    """
    return Response(_dumps(document), media_type="application/json")


def _dumps(document: Any) -> bytes:
    import orjson

    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def time_delta(value: timedelta | None) -> schemas.TimeDelta | None:
    if value is None:
        return None
    return schemas.TimeDelta(
        type="TimeDelta", days=value.days, seconds=value.seconds, microseconds=value.microseconds
    )


def task(value: SerializedTask) -> schemas.Task:
    return schemas.Task(
        class_ref={"module_path": "minisched.operators", "class_name": value.operator},
        task_id=value.task_id,
        task_display_name=value.task_id,
        owner=value.owner,
        trigger_rule=value.trigger_rule,
        depends_on_past=value.depends_on_past,
        retries=value.retries,
        pool=value.pool,
        pool_slots=value.pool_slots,
        execution_timeout=time_delta(value.execution_timeout),
        retry_delay=time_delta(value.retry_delay),
        retry_exponential_backoff=value.retry_exponential_backoff,
        priority_weight=value.priority_weight,
        downstream_task_ids=list(value.downstream_task_ids),
        doc_md=value.doc,
    )


def dag_run(run: DagRun) -> schemas.DAGRun:
    return schemas.DAGRun(
        dag_run_id=run.run_id,
        dag_id=run.dag_id,
        logical_date=run.logical_date,
        execution_date=run.logical_date,
        start_date=run.start_date,
        end_date=run.end_date,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
        run_type=run.run_type,
        state=run.state,
        external_trigger=run.run_type == "manual",
        conf=run.conf or {},
    )


def task_instance(ti: TaskInstance, logical_date: datetime) -> schemas.TaskInstance:
    return schemas.TaskInstance(
        task_id=ti.task_id,
        task_display_name=ti.task_id,
        dag_id=ti.dag_id,
        dag_run_id=ti.run_id,
        execution_date=logical_date,
        start_date=ti.start_date,
        end_date=ti.end_date,
        duration=ti.duration,
        state=ti.state,
        try_number=ti.try_number,
        map_index=ti.map_index,
        max_tries=ti.max_tries,
        hostname=ti.hostname or "",
        pool=ti.pool,
        pool_slots=ti.pool_slots,
        priority_weight=ti.priority_weight,
        operator=ti.operator,
        queued_when=ti.queued_dttm,
        pid=ti.pid,
    )


def references(dag_id: str, tis: list[ClearableTi]) -> schemas.TaskInstanceReferenceCollection:
    return schemas.TaskInstanceReferenceCollection(
        task_instances=[
            schemas.TaskInstanceReference(
                task_id=ti.task_id, dag_id=dag_id, dag_run_id=ti.run_id, execution_date=ti.logical_date
            )
            for ti in tis
        ]
    )


def pool(usage: PoolUsage, by_state: dict[tuple[str, str], int]) -> schemas.Pool:
    return schemas.Pool(
        name=usage.pool,
        slots=usage.slots,
        occupied_slots=usage.occupied_slots,
        running_slots=by_state.get((usage.pool, "running"), 0),
        queued_slots=by_state.get((usage.pool, "queued"), 0),
        open_slots=usage.open_slots,
        description=usage.description,
    )


def import_error(row: ImportError_) -> schemas.DagImportError:
    return schemas.DagImportError(
        import_error_id=row.id, timestamp=row.timestamp, filename=row.filename, stack_trace=row.stacktrace
    )


def event_log(row: Log) -> schemas.EventLog:
    return schemas.EventLog(
        event_log_id=row.id,
        when=row.dttm,
        dag_id=row.dag_id,
        task_id=row.task_id,
        run_id=row.run_id,
        try_number=row.try_number,
        event=row.event,
        owner=row.owner,
        extra=row.extra,
    )
