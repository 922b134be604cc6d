"""/dags, /dags/{dag_id} (PATCH is_paused), /dags/{dag_id}/tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from minisched.api import convert, schemas
from minisched.api.deps import Op, PageDep, SessionDep, Viewer
from minisched.api.problems import ERROR_RESPONSES
from minisched.db.session import is_sqlite, read_connection
from minisched.service import dags
from minisched.service.errors import InvalidInput, NotFound
from minisched.service.paging import Page

router = APIRouter(tags=["DAG"], responses=ERROR_RESPONSES)


# The DAG routes return their JSON ready-made (`convert.json_response`); `response_model` still
# declares the shape for the OpenAPI spec, and tests/api check the two agree.
@router.get("/dags", response_model=schemas.DAGCollection)
async def get_dags(
    page: PageDep,
    _actor: Viewer,
    paused: bool | None = None,
    dag_id_pattern: Annotated[str | None, Query(description="Only DAGs whose id contains this.")] = None,
    only_active: bool = True,
) -> Response:
    return await dag_collection(page, paused, dag_id_pattern, only_active)


async def dag_collection(
    page: Page, paused: bool | None, dag_id_pattern: str | None, only_active: bool
) -> Response:
    """The answer of `GET /dags`, for this route and for `shortcut.DagListShortcut`, which answers
    the plain requests without FastAPI's routing and dependencies."""
    # The busiest read of the API. On SQLite it runs on the event loop: a read there is a short call
    # into the C library that never waits for the scheduler's writes (WAL), and the trip to a worker
    # thread cost more CPU than the query. Elsewhere, one trip to a worker thread for the query and
    # the conversion (a sync handler with a session dependency makes four).
    if is_sqlite():
        return _dag_collection(page, paused, dag_id_pattern, only_active)
    return await run_in_threadpool(_dag_collection, page, paused, dag_id_pattern, only_active)


def _dag_collection(
    page: Page, paused: bool | None, dag_id_pattern: str | None, only_active: bool
) -> Response:
    with read_connection() as connection:
        rows, total = dags.list_raw_dags(
            connection, page=page, paused=paused, dag_id_pattern=dag_id_pattern, only_active=only_active
        )
    return Response(convert.dag_list_json(rows, total), media_type="application/json")


@router.get("/dags/{dag_id}", response_model=schemas.DAG)
def get_dag(dag_id: str, session: SessionDep, _actor: Viewer) -> Response:
    return convert.json_response(convert.dag_document(dags.get_dag(dag_id, session=session)))


@router.patch("/dags/{dag_id}", response_model=schemas.DAG)
def patch_dag(dag_id: str, body: schemas.DAGPatch, session: SessionDep, actor: Op) -> Response:
    info = dags.set_paused(dag_id, body.is_paused, actor=actor, session=session)
    return convert.json_response(convert.dag_document(info))


#: What `GET /dags/{dag_id}/tasks` may order by: the task's fields that have one comparable value.
TASK_ORDER = (
    "task_id",
    "task_display_name",
    "owner",
    "trigger_rule",
    "depends_on_past",
    "is_mapped",
    "retries",
    "pool",
    "pool_slots",
    "retry_exponential_backoff",
    "priority_weight",
    "weight_rule",
)


@router.get("/dags/{dag_id}/tasks", response_model=schemas.TaskCollection)
def get_tasks(dag_id: str, session: SessionDep, page: PageDep, _actor: Viewer) -> schemas.TaskCollection:
    """The DAG's tasks, ordered (`task_id` by default; ties by task_id) and paged like every list."""
    key = page.order_by or "task_id"
    name = key.removeprefix("-")
    if name not in TASK_ORDER:
        raise InvalidInput(f"cannot order by {name!r}; use one of {', '.join(sorted(TASK_ORDER))}")
    structure = dags.get_structure(dag_id, session=session)
    tasks = sorted((convert.task(t) for t in structure.tasks.values()), key=lambda t: t.task_id)
    tasks.sort(key=lambda t: getattr(t, name), reverse=key.startswith("-"))
    shown = tasks[page.offset : page.offset + page.limit]
    return schemas.TaskCollection(tasks=shown, total_entries=len(tasks))


@router.get("/dags/{dag_id}/tasks/{task_id}", response_model=schemas.Task)
def get_task(dag_id: str, task_id: str, session: SessionDep, _actor: Viewer) -> schemas.Task:
    structure = dags.get_structure(dag_id, session=session)
    if task_id not in structure.tasks:
        raise NotFound(f"DAG {dag_id!r} has no task {task_id!r}")
    return convert.task(structure.tasks[task_id])
