"""The DAG list (pause toggle, last 10 runs, next run, import-error banner) and a DAG's page
(grid of runs x tasks, graph, details, code). Each page is a fixed number of SQL statements."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from minisched.db.session import create_read_session, create_session
from minisched.models import DagRun
from minisched.models.types import utcnow
from minisched.service import dags, events, grid, runs
from minisched.service.paging import Page
from minisched.www.common import OffsetQuery, back_to, for_change, viewer
from minisched.www.grid_html import grid_rows
from minisched.www.render import is_active, page
from minisched.www.svg import graph_svg

router = APIRouter(include_in_schema=False)
DAGS_PER_PAGE = 50
RUNS_PER_GRID = 25
MAX_CODE_BYTES = 1024 * 1024


@router.get("/", response_class=HTMLResponse)
def dag_list(request: Request, *, offset: OffsetQuery = 0) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        rows, total = dags.list_dags(session=session, page=Page(limit=DAGS_PER_PAGE, offset=offset))
        recent = runs.recent_runs([row.dag_id for row in rows], 10, session=session)
        broken = events.import_error_count(session=session)
    running = any(is_active(run.state) for cells in recent.values() for run in cells)
    return page(
        "dags.html",
        **ctx,
        nav="dags",
        dags=rows,
        recent=recent,
        import_errors=broken,
        total=total,
        offset=offset,
        limit=DAGS_PER_PAGE,
        refresh=running,
    )


@router.post("/dags/{dag_id}/pause")
def pause(
    request: Request,
    *,
    dag_id: str,
    is_paused: Annotated[str, Form()],
    csrf_token: Annotated[str | None, Form()] = None,
    next: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    actor = for_change(request, csrf_token)
    with create_session() as session:
        dags.set_paused(dag_id, is_paused == "true", actor=actor, session=session)
    return back_to(next, f"/dags/{dag_id}")


@router.get("/dags/{dag_id}", response_class=HTMLResponse)
def dag_page(
    request: Request,
    *,
    dag_id: str,
    tab: Annotated[str, Query(pattern="^(grid|graph|details|code)$")] = "grid",
    offset: OffsetQuery = 0,
) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        info = dags.get_dag(dag_id, session=session)
        structure = dags.get_structure(dag_id, session=session)
        shown = grid.grid(dag_id, session=session, limit=RUNS_PER_GRID, offset=offset)
    ctx.update(nav="dags", dag=info, structure=structure, task_ids=structure.topological_order, tab=tab)
    ctx.update(grid=shown, offset=offset, limit=RUNS_PER_GRID)
    ctx["refresh"] = any(is_active(run.state) for run in shown.runs)
    ctx["bar_heights"] = _bar_heights(shown.runs)
    if tab == "grid":
        ctx["grid_rows"] = grid_rows(dag_id, structure.topological_order, shown.runs, shown.cells)
    if tab == "graph":
        latest = shown.runs[-1] if shown.runs else None
        ctx["graph"] = graph_svg(structure, _states_of(shown, latest), _task_links(dag_id, latest))
        ctx["graph_run"] = latest
    if tab == "code":
        ctx["code"] = _read_code(info.fileloc)
    return page("dag.html", **ctx)


def _bar_heights(shown_runs: list[DagRun]) -> dict[str, int]:
    """A run's bar in the grid is as tall as its duration is long, relative to the longest shown."""
    now = utcnow()
    seconds = {
        run.run_id: ((run.end_date or now) - run.start_date).total_seconds() if run.start_date else 0.0
        for run in shown_runs
    }
    longest = max(seconds.values(), default=0.0) or 1.0
    return {run_id: 8 + round(40 * value / longest) for run_id, value in seconds.items()}


def _states_of(shown: grid.GridPage, run: DagRun | None) -> dict[str, str | None]:
    if run is None:
        return {}
    return {task_id: cell.state for (run_id, task_id), cell in shown.cells.items() if run_id == run.run_id}


def _task_links(dag_id: str, run: DagRun | None) -> Callable[[str], str | None]:
    base = f"/dags/{dag_id}/runs/{quote(run.run_id, safe='')}/tasks/" if run else None
    return lambda task_id: base + task_id if base else None


def _read_code(fileloc: str) -> list[str] | None:
    path = Path(fileloc)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CODE_BYTES)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace").splitlines()
