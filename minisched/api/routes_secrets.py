"""/connections and /variables (admin only; a password is never returned)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from minisched.api import schemas
from minisched.api.deps import Admin, PageDep, SessionDep
from minisched.api.problems import ERROR_RESPONSES
from minisched.service import secrets
from minisched.service.errors import InvalidInput

router = APIRouter(responses=ERROR_RESPONSES)


def _connection(fields: dict[str, Any]) -> schemas.ConnectionOut:
    return schemas.ConnectionOut(
        connection_id=fields["conn_id"],
        conn_type=fields["conn_type"],
        description=fields["description"],
        host=fields["host"],
        login=fields["login"],
        schema_=fields["schema"],
        port=fields["port"],
        extra=fields["extra"],
    )


def _fields(body: schemas.ConnectionIn) -> dict[str, Any]:
    return {
        "conn_id": body.connection_id,
        "conn_type": body.conn_type,
        "description": body.description,
        "host": body.host,
        "login": body.login,
        "schema": body.schema_,
        "port": body.port,
        "password": body.password,
        "extra": body.extra,
    }


@router.get("/connections", response_model=schemas.ConnectionCollection, tags=["Connection"])
def get_connections(session: SessionDep, page: PageDep, _actor: Admin) -> schemas.ConnectionCollection:
    rows, total = secrets.list_connections(session=session, page=page)
    return schemas.ConnectionCollection(connections=[_connection(row) for row in rows], total_entries=total)


@router.get("/connections/{connection_id}", response_model=schemas.ConnectionOut, tags=["Connection"])
def get_connection(connection_id: str, session: SessionDep, _actor: Admin) -> schemas.ConnectionOut:
    return _connection(secrets.connection_fields(connection_id, session=session))


@router.post("/connections", response_model=schemas.ConnectionOut, tags=["Connection"])
def post_connection(body: schemas.ConnectionIn, session: SessionDep, actor: Admin) -> schemas.ConnectionOut:
    saved = secrets.save_connection(_fields(body), actor=actor, session=session, must_be_new=True)
    return _connection(saved)


@router.patch("/connections/{connection_id}", response_model=schemas.ConnectionOut, tags=["Connection"])
def patch_connection(
    connection_id: str,
    body: schemas.ConnectionPatch,
    session: SessionDep,
    actor: Admin,
    update_mask: Annotated[
        list[str] | None,
        Query(description="Change only these fields of the body (repeat it, or separate them with commas)."),
    ] = None,
) -> schemas.ConnectionOut:
    """Change the fields the body gives, or only those `update_mask` names; the others (the password
    among them) keep their stored values, as Airflow's PATCH does."""
    given = body.model_dump(exclude_unset=True)
    named = given.pop("connection_id", connection_id)
    if named != connection_id:
        raise InvalidInput(
            f"the body names connection {named!r}, the path {connection_id!r}: the connection_id cannot be "
            "changed (POST a new connection and DELETE this one)"
        )
    changes = {("schema" if field == "schema_" else field): value for field, value in given.items()}
    if update_mask is not None:
        changes = _masked(changes, update_mask)
    return _connection(secrets.update_connection(connection_id, changes, actor=actor, session=session))


def _masked(changes: dict[str, Any], update_mask: list[str]) -> dict[str, Any]:
    """The changes that `update_mask` names; a name that is not a field given in the body is an error."""
    names = [name.strip() for item in update_mask for name in item.split(",") if name.strip()]
    for name in names:
        if name not in changes:
            raise InvalidInput(
                f"update_mask names {name!r}, which is unknown or not in the body; name fields the body "
                f"gives: {', '.join(sorted(changes)) or '(none)'}"
            )
    return {name: changes[name] for name in names}


@router.delete("/connections/{connection_id}", status_code=204, response_class=Response, tags=["Connection"])
def delete_connection(connection_id: str, session: SessionDep, actor: Admin) -> Response:
    secrets.remove_connection(connection_id, actor=actor, session=session)
    return Response(status_code=204)


def _variable(row: tuple[str, str | None, str | None]) -> schemas.VariableOut:
    key, value, description = row
    return schemas.VariableOut(key=key, value=value, description=description)


@router.get("/variables", response_model=schemas.VariableCollection, tags=["Variable"])
def get_variables(session: SessionDep, page: PageDep, _actor: Admin) -> schemas.VariableCollection:
    rows, total = secrets.list_variables(session=session, page=page)
    return schemas.VariableCollection(variables=[_variable(row) for row in rows], total_entries=total)


@router.get("/variables/{variable_key}", response_model=schemas.VariableOut, tags=["Variable"])
def get_variable(variable_key: str, session: SessionDep, _actor: Admin) -> schemas.VariableOut:
    return _variable(secrets.get_variable(variable_key, session=session))


@router.post("/variables", response_model=schemas.VariableOut, tags=["Variable"])
def post_variable(body: schemas.VariableIn, session: SessionDep, actor: Admin) -> schemas.VariableOut:
    saved = secrets.save_variable(
        body.key, body.value, body.description, actor=actor, session=session, must_be_new=True
    )
    return _variable(saved)


@router.patch("/variables/{variable_key}", response_model=schemas.VariableOut, tags=["Variable"])
def patch_variable(
    variable_key: str, body: schemas.VariableIn, session: SessionDep, actor: Admin
) -> schemas.VariableOut:
    if body.key != variable_key:
        raise InvalidInput(f"the body names variable {body.key!r}, the path {variable_key!r}")
    saved = secrets.save_variable(
        body.key, body.value, body.description, actor=actor, session=session, must_be_new=False
    )
    return _variable(saved)


@router.delete("/variables/{variable_key}", status_code=204, response_class=Response, tags=["Variable"])
def delete_variable(variable_key: str, session: SessionDep, actor: Admin) -> Response:
    secrets.remove_variable(variable_key, actor=actor, session=session)
    return Response(status_code=204)
