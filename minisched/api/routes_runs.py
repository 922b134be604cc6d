"""/dags/{dag_id}/dagRuns: list, trigger, look up, mark success/failed, clear."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from minisched.api import convert, schemas
from minisched.api.deps import Op, PageDep, SessionDep, Viewer
from minisched.api.problems import ERROR_RESPONSES
from minisched.models.state import DagRunState
from minisched.service import runs

router = APIRouter(tags=["DAGRun"], responses=ERROR_RESPONSES)


@router.get("/dags/{dag_id}/dagRuns", response_model=schemas.DAGRunCollection)
def get_dag_runs(
    *,
    dag_id: str,
    session: SessionDep,
    page: PageDep,
    _actor: Viewer,
    state: Annotated[list[DagRunState] | None, Query(description="Only runs in these states.")] = None,
    execution_date_gte: datetime | None = None,
    execution_date_lte: datetime | None = None,
) -> schemas.DAGRunCollection:
    rows, total = runs.list_runs(
        dag_id,
        session=session,
        page=page,
        states=state or (),
        logical_date_gte=execution_date_gte,
        logical_date_lte=execution_date_lte,
    )
    return schemas.DAGRunCollection(dag_runs=[convert.dag_run(row) for row in rows], total_entries=total)


@router.post("/dags/{dag_id}/dagRuns", response_model=schemas.DAGRun)
def post_dag_run(dag_id: str, body: schemas.TriggerDAGRun, session: SessionDep, actor: Op) -> schemas.DAGRun:
    run = runs.trigger(
        dag_id,
        actor=actor,
        session=session,
        logical_date=body.logical_date,
        conf=body.conf,
        run_id=body.dag_run_id,
    )
    return convert.dag_run(run)


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}", response_model=schemas.DAGRun)
def get_dag_run(dag_id: str, dag_run_id: str, session: SessionDep, _actor: Viewer) -> schemas.DAGRun:
    return convert.dag_run(runs.get_run(dag_id, dag_run_id, session=session))


@router.patch("/dags/{dag_id}/dagRuns/{dag_run_id}", response_model=schemas.DAGRun)
def update_dag_run_state(
    dag_id: str, dag_run_id: str, body: schemas.UpdateDagRunState, session: SessionDep, actor: Op
) -> schemas.DAGRun:
    return convert.dag_run(runs.set_run_state(dag_id, dag_run_id, body.state, actor=actor, session=session))


@router.post(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
    response_model=schemas.DAGRun | schemas.TaskInstanceReferenceCollection,
)
def clear_dag_run(
    dag_id: str, dag_run_id: str, body: schemas.ClearDagRun, session: SessionDep, actor: Op
) -> schemas.DAGRun | schemas.TaskInstanceReferenceCollection:
    """A dry run answers with the task instances it would reset; otherwise with the run, queued again."""
    cleared = runs.clear_run(dag_id, dag_run_id, actor=actor, session=session, dry_run=body.dry_run)
    if body.dry_run:
        return convert.references(dag_id, cleared)
    session.expire_all()
    return convert.dag_run(runs.get_run(dag_id, dag_run_id, session=session))
