"""Trigger (conf JSON and logical date validated, errors shown in the form) and clear (a preview of
what it resets, then a confirmed post)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from minisched.db.session import create_read_session, create_session
from minisched.exceptions import MinischedError
from minisched.scheduler.clear import ClearableTi
from minisched.service import dags, runs, task_instances
from minisched.service.actor import Actor
from minisched.www.common import back_to, for_change, viewer
from minisched.www.pages_runs import run_path
from minisched.www.render import page

router = APIRouter(include_in_schema=False)


@router.get("/dags/{dag_id}/trigger", response_class=HTMLResponse)
def trigger_form(request: Request, *, dag_id: str) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        dags.get_dag(dag_id, session=session)
    return page("trigger.html", **ctx, nav="dags", dag_id=dag_id, conf="{}", logical_date="", errors=[])


@router.post("/dags/{dag_id}/trigger")
def trigger(
    request: Request,
    *,
    dag_id: str,
    conf: Annotated[str, Form()] = "",
    logical_date: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    from minisched.inputs import parse_conf, parse_datetime

    actor = for_change(request, csrf_token)
    with create_read_session() as session:
        dags.get_dag(dag_id, session=session)  # an unknown DAG is a 404 page, not a form error
    errors: list[str] = []
    parsed_conf = parsed_date = None
    try:
        parsed_conf = parse_conf(conf.strip() or "{}", "conf")
    except MinischedError as exc:
        errors.append(str(exc))
    try:
        parsed_date = parse_datetime(logical_date, "logical date") if logical_date.strip() else None
    except MinischedError as exc:
        errors.append(str(exc))
    if not errors:
        try:
            with create_session() as session:
                run = runs.trigger(
                    dag_id, actor=actor, session=session, logical_date=parsed_date, conf=parsed_conf
                )
            return RedirectResponse(run_path(dag_id, run.run_id), status_code=303)
        except MinischedError as exc:
            errors.append(str(exc).replace("logical_date", "logical date"))
    ctx = viewer(request)
    return page(
        "trigger.html",
        400,
        **ctx,
        nav="dags",
        dag_id=dag_id,
        conf=conf,
        logical_date=logical_date,
        errors=errors,
    )


def _clear(
    dag_id: str, run_id: str, task_id: str | None, downstream: bool, *, dry_run: bool, actor: Actor
) -> list[ClearableTi]:
    """One task instance (and its downstream, if asked) or the whole run, whatever their state."""
    request = task_instances.ClearRequest(
        dry_run=dry_run,
        task_ids=[task_id] if task_id else None,
        dag_run_id=run_id,
        only_failed=False,
        include_downstream=downstream,
    )
    with create_session() as session:
        return task_instances.clear(dag_id, request, actor=actor, session=session)


@router.get("/dags/{dag_id}/clear", response_class=HTMLResponse)
def clear_preview(
    request: Request, *, dag_id: str, run_id: str, task_id: str | None = None, downstream: bool = False
) -> HTMLResponse:
    ctx = viewer(request)
    to_clear = _clear(dag_id, run_id, task_id, downstream, dry_run=True, actor=ctx["actor"])
    return page(
        "clear.html",
        **ctx,
        nav="dags",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        downstream=downstream,
        to_clear=to_clear,
    )


@router.post("/dags/{dag_id}/clear")
def clear(
    request: Request,
    *,
    dag_id: str,
    run_id: Annotated[str, Form()],
    task_id: Annotated[str | None, Form()] = None,
    downstream: Annotated[str, Form()] = "false",
    csrf_token: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    actor = for_change(request, csrf_token)
    cleared = _clear(dag_id, run_id, task_id, downstream == "true", dry_run=False, actor=actor)
    message = f"Cleared {len(cleared)} task instance{'s' if len(cleared) != 1 else ''}"
    return back_to(f"{run_path(dag_id, run_id)}?message={quote(message)}", "/")
