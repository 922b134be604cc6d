"""Connections and variables (admin only): listed without passwords, sensitive values masked; added,
changed and deleted through the same service functions as the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from minisched.db.session import create_read_session, create_session
from minisched.masking import MASK
from minisched.service import secrets
from minisched.service.paging import MAX_LIMIT, Page
from minisched.www.auth import Forbidden
from minisched.www.common import for_change, viewer
from minisched.www.forms import Typed, refusal, typed_back
from minisched.www.render import page

router = APIRouter(include_in_schema=False)


def _admin_context(request: Request) -> dict[str, Any]:
    ctx = viewer(request)
    actor = ctx["actor"]
    if not actor.may("admin"):
        raise Forbidden(f"{actor.name} has role {actor.role}; connections and variables need admin")
    return ctx


@router.get("/connections", response_class=HTMLResponse)
def connections_page(request: Request) -> HTMLResponse:
    return _connections(request)


def _connections(request: Request, error: str | None = None, form: Typed | None = None) -> HTMLResponse:
    """The connections page; with the error of a refused form (a 400), never one taken from the URL,
    and the form as it was typed (never its password)."""
    ctx = _admin_context(request)
    with create_read_session() as session:
        rows, total = secrets.list_connections(session=session, page=Page(limit=MAX_LIMIT))
    return page(
        "connections.html",
        400 if error else 200,
        **ctx,
        nav="connections",
        rows=rows,
        total=total,
        error=error,
        form=form or Typed(),
    )


@router.post("/connections")
def add_connection(
    request: Request,
    *,
    conn_id: Annotated[str, Form()] = "",
    conn_type: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    conn_schema: Annotated[str, Form(alias="schema")] = "",
    extra: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    actor = for_change(request, csrf_token, role="admin")
    fields = {
        "conn_id": conn_id.strip(),
        "conn_type": conn_type.strip(),
        "host": host or None,
        "login": login or None,
        "password": password or None,
        "port": port.strip() or None,
        "schema": conn_schema or None,
        "extra": extra or None,
    }
    error = refusal(
        lambda session: secrets.save_connection(fields, actor=actor, session=session, must_be_new=True)
    )
    if error:
        return _connections(request, error=error, form=typed_back(fields, secret=["password"]))
    return RedirectResponse("/connections", status_code=303)


@router.post("/connections/{conn_id}/delete")
def delete_connection(
    request: Request, *, conn_id: str, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    actor = for_change(request, csrf_token, role="admin")
    with create_session() as session:
        secrets.remove_connection(conn_id, actor=actor, session=session)
    return RedirectResponse("/connections", status_code=303)


@router.get("/variables", response_class=HTMLResponse)
def variables_page(request: Request, *, edit: str | None = None) -> HTMLResponse:
    """The variables, and the form to set one (filled in with `edit`'s key, description and value,
    unless the value is sensitive)."""
    form, editing = Typed(), None
    if edit:
        with create_read_session() as session:
            key, value, description = secrets.get_variable(edit, session=session)
        # A sensitive value comes back as ***: never put in the form, it would be saved as ***.
        shown = {"key": key, "value": value, "description": description}
        form, editing = typed_back(shown, secret=["value"] if value == MASK else []), key
    return _variables(request, form=form, editing=editing)


def _variables(
    request: Request, error: str | None = None, form: Typed | None = None, editing: str | None = None
) -> HTMLResponse:
    """The variables page; with the error of a refused form (a 400), never one taken from the URL,
    and the form as it was typed (never a sensitive key's value)."""
    ctx = _admin_context(request)
    with create_read_session() as session:
        rows, total = secrets.list_variables(session=session, page=Page(limit=MAX_LIMIT))
    return page(
        "variables.html",
        400 if error else 200,
        **ctx,
        nav="variables",
        rows=rows,
        total=total,
        error=error,
        form=form or Typed(),
        editing=editing,
    )


@router.post("/variables")
def set_variable(
    request: Request,
    *,
    key: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Create or change a variable; a refused form comes back with what was typed, but a value is
    never echoed when its key is sensitive (the masking rule of the whole app)."""
    actor = for_change(request, csrf_token, role="admin")
    error = refusal(
        lambda session: secrets.save_variable(
            key.strip(), value, description or None, actor=actor, session=session, must_be_new=None
        )
    )
    if error:
        typed = {"key": key, "value": value, "description": description}
        secret = ["value"] if secrets.is_sensitive_variable(key.strip()) else []
        return _variables(request, error=error, form=typed_back(typed, secret=secret))
    return RedirectResponse("/variables", status_code=303)


@router.post("/variables/{key:path}/delete")
def delete_variable(
    request: Request, *, key: str, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    actor = for_change(request, csrf_token, role="admin")
    with create_session() as session:
        secrets.remove_variable(key, actor=actor, session=session)
    return RedirectResponse("/variables", status_code=303)
