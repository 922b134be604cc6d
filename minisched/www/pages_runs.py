"""A run's page (task states, Gantt chart), a task instance's page (its log per try, followed while
the try runs, and downloadable raw), and marking either success or failed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse

from minisched.db.session import create_read_session, create_session
from minisched.models.types import utcnow
from minisched.service import grid, logs, runs, task_instances
from minisched.www.common import back_to, for_change, viewer
from minisched.www.render import is_active, page
from minisched.www.svg import gantt_svg

router = APIRouter(include_in_schema=False)
RUN = "/dags/{dag_id}/runs/{run_id}"
MapIndexQuery = Annotated[int, Query(ge=-1, le=2**31 - 1)]
LOG_PAGE_BYTES = 512 * 1024


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"


@router.get(RUN, response_class=HTMLResponse)
def run_page(request: Request, *, dag_id: str, run_id: str, message: str | None = None) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        run = runs.get_run(dag_id, run_id, session=session)
        tis = grid.run_task_instances(dag_id, run_id, session=session)
    base = run_path(dag_id, run_id)
    return page(
        "run.html",
        **ctx,
        nav="dags",
        run=run,
        tis=tis,
        conf=json.dumps(run.conf or {}, sort_keys=True),
        gantt=gantt_svg(tis, utcnow(), lambda task_id: f"{base}/tasks/{task_id}"),
        message=message,
        refresh=is_active(run.state) or any(is_active(ti.state) for ti in tis),
    )


@router.post(RUN + "/mark")
def mark_run(
    request: Request,
    *,
    dag_id: str,
    run_id: str,
    state: Annotated[str, Form()],
    csrf_token: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    actor = for_change(request, csrf_token)
    with create_session() as session:
        runs.set_run_state(dag_id, run_id, state, actor=actor, session=session)
    return back_to(f"{run_path(dag_id, run_id)}?message=" + quote(f"Marked the run {state}"), "/")


@router.get(RUN + "/tasks/{task_id}", response_class=HTMLResponse)
def task_instance_page(
    request: Request,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: Annotated[int | None, Query(alias="try", ge=1)] = None,
    map_index: MapIndexQuery = -1,
    message: str | None = None,
) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        ti, _ = task_instances.get_task_instance(
            dag_id, run_id, task_id, session=session, map_index=map_index
        )
    shown = min(try_number or ti.try_number, ti.try_number)
    following = ti.state in ("queued", "running") and shown == ti.try_number
    return page(
        "task_instance.html",
        **ctx,
        nav="dags",
        ti=ti,
        try_number=shown,
        following=following,
        log_base=f"{run_path(dag_id, run_id)}/tasks/{task_id}/logs/{shown}",
        log_query=f"?map_index={map_index}" if map_index >= 0 else "",
        message=message,
        refresh=is_active(ti.state) and not following,
    )


@router.post(RUN + "/tasks/{task_id}/mark")
def mark_task_instance(
    request: Request,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    state: Annotated[str, Form()],
    csrf_token: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    actor = for_change(request, csrf_token)
    with create_session() as session:
        task_instances.set_state(dag_id, run_id, [task_id], state, actor=actor, session=session)
    target = f"{run_path(dag_id, run_id)}/tasks/{task_id}?message=" + quote(f"Marked {task_id} {state}")
    return back_to(target, "/")


@router.get(RUN + "/tasks/{task_id}/logs/{try_number}/chunk")
def log_chunk(
    request: Request,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    token: str = "",
    map_index: MapIndexQuery = -1,
) -> JSONResponse:
    """The next page of the log for the follower script (the first is the log's last page; `skipped`
    says how many bytes come before it); `running` while more may still come."""
    viewer(request)
    with create_read_session() as session:
        path = logs.log_file(dag_id, run_id, task_id, try_number, session=session, map_index=map_index)
        ti, _ = task_instances.get_task_instance(
            dag_id, run_id, task_id, session=session, map_index=map_index
        )
    # The first page is the log's end: a view of a 100 MB log reads half a megabyte, not all of it.
    if token:
        chunk = logs.read_page(path, offset=logs.decode_token(token), max_bytes=LOG_PAGE_BYTES)
    else:
        chunk = logs.read_tail(path, max_bytes=LOG_PAGE_BYTES)
    writing = ti.try_number == try_number and ti.state in ("queued", "running")
    return JSONResponse(
        {
            "content": chunk.content,
            "continuation_token": chunk.continuation_token,
            "skipped": 0 if token else chunk.offset,
            "more": not chunk.at_end,
            "running": writing,
        }
    )


@router.get(RUN + "/tasks/{task_id}/logs/{try_number}/raw")
def raw_log(
    request: Request,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    map_index: MapIndexQuery = -1,
) -> StreamingResponse:
    viewer(request)
    with create_read_session() as session:
        path = logs.log_file(dag_id, run_id, task_id, try_number, session=session, map_index=map_index)
    instance = f"__map-{map_index}" if map_index >= 0 else ""
    name = f"{dag_id}__{task_id}{instance}__attempt-{try_number}.log".replace(":", "-")
    return StreamingResponse(
        _file_chunks(path),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _file_chunks(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield chunk
    except FileNotFoundError:
        return
