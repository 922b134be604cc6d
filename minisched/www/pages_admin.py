"""Pools (see, create, change, delete), import errors (file, line, cause) and the audit log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from minisched.db.session import create_read_session
from minisched.inputs import parse_int
from minisched.service import events, pools
from minisched.service.paging import Page
from minisched.www.common import OffsetQuery, back_to, for_change, viewer
from minisched.www.forms import Typed, refusal, typed_back
from minisched.www.render import page

router = APIRouter(include_in_schema=False)
PER_PAGE = 50


@router.get("/pools", response_class=HTMLResponse)
def pools_page(request: Request, *, edit: str | None = None) -> HTMLResponse:
    """The pools, and the form to create one or change one (filled in with `edit`'s slots and
    description)."""
    form = Typed()
    if edit:
        with create_read_session() as session:
            pool = pools.get_pool(edit, session=session)
        form = typed_back({"name": pool.pool, "slots": str(pool.slots), "description": pool.description})
    return _pools(request, form=form)


def _pools(request: Request, error: str | None = None, form: Typed | None = None) -> HTMLResponse:
    """The pools page; with the error of a refused form (a 400), never one taken from the URL, and
    the form as it was typed."""
    ctx = viewer(request)
    with create_read_session() as session:
        rows, _ = pools.list_pools(session=session, page=Page(limit=1000))
    return page(
        "pools.html",
        400 if error else 200,
        **ctx,
        nav="pools",
        pools=rows,
        error=error,
        form=form or Typed(),
    )


@router.post("/pools")
def save_pool(
    request: Request,
    *,
    name: Annotated[str, Form()] = "",
    slots: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Create or change a pool; a refused form comes back with what was typed."""
    actor = for_change(request, csrf_token)

    def change(session: Session) -> None:
        count = parse_int(slots, "slots")
        pools.save_pool(name.strip(), count, actor=actor, session=session, description=description or None)

    error = refusal(change)
    if error:
        typed = {"name": name, "slots": slots, "description": description}
        return _pools(request, error=error, form=typed_back(typed))
    return back_to("/pools", "/pools")


@router.post("/pools/{name}/delete")
def delete_pool(request: Request, *, name: str, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    actor = for_change(request, csrf_token)
    error = refusal(lambda session: pools.remove_pool(name, actor=actor, session=session))
    if error:
        return _pools(request, error=error)
    return RedirectResponse("/pools", status_code=303)


@dataclass(frozen=True)
class ShownImportError:
    filename: str
    line: int | None
    cause: str
    stacktrace: str
    timestamp: datetime


_FIRST_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<cause>.*)$")


def describe(filename: str, stacktrace: str, timestamp: datetime) -> ShownImportError:
    """The loader's first line is `file:line: cause`; older rows may have only the traceback."""
    first = stacktrace.strip().splitlines()[0] if stacktrace.strip() else ""
    match = _FIRST_LINE.match(first)
    if match:
        return ShownImportError(filename, int(match["line"]), match["cause"], stacktrace, timestamp)
    last = stacktrace.strip().splitlines()[-1] if stacktrace.strip() else "unknown error"
    return ShownImportError(filename, None, last, stacktrace, timestamp)


@router.get("/import-errors", response_class=HTMLResponse)
def import_errors_page(request: Request, *, offset: OffsetQuery = 0) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        rows, total = events.list_import_errors(session=session, page=Page(limit=PER_PAGE, offset=offset))
        shown = [describe(row.filename, row.stacktrace, row.timestamp) for row in rows]
    return page(
        "import_errors.html", **ctx, nav="errors", errors=shown, total=total, offset=offset, limit=PER_PAGE
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    *,
    offset: OffsetQuery = 0,
    dag_id: str | None = None,
    event: str | None = None,
) -> HTMLResponse:
    ctx = viewer(request)
    with create_read_session() as session:
        rows, total = events.list_events(
            session=session,
            page=Page(limit=PER_PAGE, offset=offset),
            dag_id=dag_id or None,
            event=event or None,
        )
    return page(
        "audit.html",
        **ctx,
        nav="audit",
        rows=rows,
        total=total,
        offset=offset,
        limit=PER_PAGE,
        dag_id=dag_id,
        event=event,
    )
