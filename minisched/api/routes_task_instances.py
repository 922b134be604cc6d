"""Task instances of a run, their logs (paged by byte offset), clearing and marking them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from minisched.api import convert, schemas
from minisched.api.deps import Op, PageDep, RowId, SessionDep, Viewer
from minisched.api.problems import ERROR_RESPONSES
from minisched.models.state import TaskInstanceState
from minisched.models.xcom import XCom
from minisched.service import logs, task_instances

MapIndex = Annotated[int, PathParam(ge=0, le=2**31 - 1)]
#: The `state` filter: a task instance state, or 'none' for one that has no state yet.
StateFilter = Literal[
    "none",
    "scheduled",
    "queued",
    "running",
    "success",
    "failed",
    "up_for_retry",
    "upstream_failed",
    "skipped",
    "removed",
]
assert set(get_args(StateFilter)) == {"none", *TaskInstanceState}, "StateFilter must list every state"
router = APIRouter(tags=["TaskInstance"], responses=ERROR_RESPONSES)
RUN = "/dags/{dag_id}/dagRuns/{dag_run_id}"


@router.get(RUN + "/taskInstances", response_model=schemas.TaskInstanceCollection)
def get_task_instances(
    dag_id: str,
    dag_run_id: str,
    session: SessionDep,
    page: PageDep,
    _actor: Viewer,
    state: Annotated[
        list[StateFilter] | None, Query(description="Only these states ('none' for no state).")
    ] = None,
) -> schemas.TaskInstanceCollection:
    rows, total = task_instances.list_task_instances(
        dag_id, dag_run_id, session=session, page=page, states=state or ()
    )
    return schemas.TaskInstanceCollection(
        task_instances=[convert.task_instance(ti, when) for ti, when in rows], total_entries=total
    )


@router.get(RUN + "/taskInstances/{task_id}", response_model=schemas.TaskInstance)
def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, session: SessionDep, _actor: Viewer
) -> schemas.TaskInstance:
    ti, when = task_instances.get_task_instance(dag_id, dag_run_id, task_id, session=session)
    return convert.task_instance(ti, when)


@router.get(RUN + "/taskInstances/{task_id}/{map_index:int}", response_model=schemas.TaskInstance)
def get_mapped_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, map_index: MapIndex, session: SessionDep, _actor: Viewer
) -> schemas.TaskInstance:
    """One instance of a mapped task (Airflow's getMappedTaskInstance)."""
    ti, when = task_instances.get_task_instance(
        dag_id, dag_run_id, task_id, session=session, map_index=map_index
    )
    return convert.task_instance(ti, when)


@router.patch(RUN + "/taskInstances/{task_id}", response_model=schemas.TaskInstanceReference)
def patch_task_instance(
    *,
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    body: schemas.UpdateTaskInstance,
    session: SessionDep,
    actor: Op,
) -> schemas.TaskInstanceReference:
    """Mark success or failed (Airflow's `new_state`); refused while the try is queued or running."""
    ((ti, when),) = task_instances.set_state(
        dag_id, dag_run_id, [task_id], body.new_state, actor=actor, session=session, dry_run=body.dry_run
    )
    return schemas.TaskInstanceReference(
        task_id=ti.task_id, dag_id=dag_id, dag_run_id=dag_run_id, execution_date=when
    )


@router.patch(RUN + "/taskInstances/{task_id}/{map_index:int}", response_model=schemas.TaskInstanceReference)
def patch_mapped_task_instance(
    *,
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: MapIndex,
    body: schemas.UpdateTaskInstance,
    session: SessionDep,
    actor: Op,
) -> schemas.TaskInstanceReference:
    """Mark one instance of a mapped task success or failed (Airflow's patchMappedTaskInstance)."""
    ((ti, when),) = task_instances.set_state(
        dag_id,
        dag_run_id,
        [task_id],
        body.new_state,
        actor=actor,
        session=session,
        dry_run=body.dry_run,
        map_index=map_index,
    )
    return schemas.TaskInstanceReference(
        task_id=ti.task_id, dag_id=dag_id, dag_run_id=dag_run_id, execution_date=when
    )


@router.post("/dags/{dag_id}/clearTaskInstances", response_model=schemas.TaskInstanceReferenceCollection)
def clear_task_instances(
    dag_id: str, body: schemas.ClearTaskInstances, session: SessionDep, actor: Op
) -> schemas.TaskInstanceReferenceCollection:
    """Reset task instances so they run again; `dry_run` (the default) only says which."""
    request = task_instances.ClearRequest(
        dry_run=body.dry_run,
        task_ids=body.task_ids,
        dag_run_id=body.dag_run_id,
        start_date=body.start_date,
        end_date=body.end_date,
        only_failed=body.only_failed,
        include_downstream=body.include_downstream,
    )
    return convert.references(dag_id, task_instances.clear(dag_id, request, actor=actor, session=session))


@router.get(
    RUN + "/taskInstances/{task_id}/logs/{task_try_number}",
    response_model=schemas.InstanceLog,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def get_log(
    *,
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    task_try_number: RowId,
    request: Request,
    session: SessionDep,
    _actor: Viewer,
    full_content: bool = False,
    map_index: Annotated[int, Query(ge=-1, le=2**31 - 1, description="The instance of a mapped task.")] = -1,
    token: Annotated[str | None, Query(description="The continuation token of the previous page.")] = None,
    max_bytes: Annotated[int, Query(ge=1, le=logs.MAX_PAGE_BYTES)] = logs.DEFAULT_PAGE_BYTES,
) -> Response:
    """A page of the try's log from the token's offset; `full_content` with `Accept: text/plain`
    streams the whole file instead, never holding it in memory."""
    path = logs.log_file(dag_id, dag_run_id, task_id, task_try_number, session=session, map_index=map_index)
    if full_content and "text/plain" in request.headers.get("accept", ""):
        if not path.is_file():
            return PlainTextResponse("")
        return StreamingResponse(_chunks(path), media_type="text/plain; charset=utf-8")
    offset = logs.decode_token(token) if token else 0
    page = logs.read_page(path, offset=offset, max_bytes=max_bytes)
    if "text/plain" in request.headers.get("accept", "") and "json" not in request.headers.get("accept", ""):
        return PlainTextResponse(page.content, headers={"X-Continuation-Token": page.continuation_token})
    body = schemas.InstanceLog(continuation_token=page.continuation_token, content=page.content)
    return Response(body.model_dump_json(), media_type="application/json")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(64 * 1024):
            yield chunk


@router.get(
    RUN + "/taskInstances/{task_id}/xcomEntries", response_model=schemas.XComCollection, tags=["XCom"]
)
def get_xcom_entries(
    *,
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    session: SessionDep,
    page: PageDep,
    _actor: Viewer,
    map_index: Annotated[
        int | None, Query(ge=-1, le=2**31 - 1, description="Only this instance of a mapped task.")
    ] = None,
) -> schemas.XComCollection:
    from minisched.service import xcom

    rows, total = xcom.list_entries(
        dag_id, dag_run_id, task_id, session=session, page=page, map_index=map_index
    )
    return schemas.XComCollection(
        xcom_entries=[_xcom(row, with_value=False) for row in rows], total_entries=total
    )


@router.get(
    RUN + "/taskInstances/{task_id}/xcomEntries/{xcom_key}", response_model=schemas.XComEntry, tags=["XCom"]
)
def get_xcom_entry(
    *,
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    xcom_key: str,
    session: SessionDep,
    _actor: Viewer,
    map_index: Annotated[int, Query(ge=-1, le=2**31 - 1, description="The instance of a mapped task.")] = -1,
) -> schemas.XComEntry:
    from minisched.service import xcom

    entry = xcom.get_entry(dag_id, dag_run_id, task_id, xcom_key, session=session, map_index=map_index)
    return _xcom(entry, with_value=True)


def _xcom(row: XCom, *, with_value: bool) -> schemas.XComEntry:
    return schemas.XComEntry(
        key=row.key,
        timestamp=row.timestamp,
        map_index=row.map_index,
        task_id=row.task_id,
        dag_id=row.dag_id,
        run_id=row.run_id,
        value=json.dumps(row.value) if with_value else None,
    )
