"""Connections and variables for the API (admin only): a password is never returned, secret-looking
extras and sensitive variables come back as `***`. Every change writes its audit row."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minisched.exceptions import MinischedError
from minisched.models import Connection, Variable
from minisched.service.actor import Actor, audit
from minisched.service.errors import Conflict, InvalidInput, NotFound
from minisched.service.paging import Page, ordered

#: A new connection's id, as the API's schema has it (ConnectionIn).
CONNECTION_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")

MASK = "***"


def connection_fields(conn_id: str, *, session: Session) -> dict[str, Any]:
    row = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
    if row is None:
        raise NotFound(f"connection {conn_id!r} does not exist; GET /api/v1/connections lists them")
    return shown_connection(row)


def shown_connection(row: Connection) -> dict[str, Any]:
    """The fields as the API shows them: the password is never decrypted, secret-looking keys of
    `extra` are masked."""
    from minisched.db.fernet import decrypt
    from minisched.masking import redact

    shown: dict[str, Any] = {
        field: getattr(row, field)
        for field in ("conn_id", "conn_type", "description", "host", "schema", "login", "port")
    }
    extra = decrypt(row.extra, f"the extra of connection {row.conn_id!r}")
    shown["extra"] = extra
    if extra:
        try:
            data = json.loads(extra)
        except ValueError:
            data = None
        if isinstance(data, dict):
            shown["extra"] = json.dumps(redact(data), sort_keys=True)
        else:
            shown["extra"] = MASK
    return shown


def list_connections(*, session: Session, page: Page) -> tuple[list[dict[str, Any]], int]:
    columns = {
        "connection_id": Connection.conn_id,
        "conn_type": Connection.conn_type,
        "host": Connection.host,
    }
    rows = session.scalars(ordered(select(Connection), page, columns, "connection_id", (Connection.id,)))
    total = int(session.scalar(select(func.count()).select_from(Connection)) or 0)
    return [shown_connection(row) for row in rows], total


def save_connection(
    fields: Mapping[str, Any], *, actor: Actor, session: Session, must_be_new: bool
) -> dict[str, Any]:
    """Validate the fields as a `Connection` would, then store them (encrypted) and audit the change."""
    from minisched.authoring.connection import Connection as ConnectionFields
    from minisched.db.connections import add_connections

    conn_id = str(fields["conn_id"])
    if must_be_new:
        _check_new(conn_id, str(fields.get("conn_type") or ""))
    exists = session.scalar(select(Connection.id).where(Connection.conn_id == conn_id)) is not None
    if must_be_new and exists:
        raise Conflict(
            f"connection {conn_id!r} already exists; PATCH /api/v1/connections/{conn_id} changes it"
        )
    if not must_be_new and not exists:
        raise NotFound(f"connection {conn_id!r} does not exist; POST /api/v1/connections creates it")
    try:
        validated = ConnectionFields.from_mapping(
            conn_id, {k: v for k, v in fields.items() if k != "conn_id"}
        )
        add_connections([validated.to_fields()], session=session, overwrite=True)
    except MinischedError as exc:
        raise InvalidInput(str(exc)) from None
    audit(
        actor,
        "connection_set",
        session=session,
        extra={"conn_id": conn_id, "conn_type": fields.get("conn_type")},
    )
    return connection_fields(conn_id, session=session)


def _check_new(conn_id: str, conn_type: str) -> None:
    """What the API's schema asks of a new connection, for the callers without one (the UI form)."""
    if not CONNECTION_ID.fullmatch(conn_id):
        raise InvalidInput(
            f"invalid connection id {conn_id!r}: use 1 to 250 letters, digits, '_', '.' or '-'"
        )
    if not 1 <= len(conn_type) <= 500:
        raise InvalidInput("a connection needs a type of 1 to 500 characters, e.g. postgres or http")


def update_connection(
    conn_id: str, changes: Mapping[str, Any], *, actor: Actor, session: Session
) -> dict[str, Any]:
    """Change only the fields in `changes`; the others, the password among them, stay as stored. An
    extra sent back as the API showed it keeps the stored values where it says `***`."""
    from minisched.db.connections import get_connection

    connection_fields(conn_id, session=session)
    stored = get_connection(conn_id, session=session)
    merged = {**stored, **changes}
    if changes.get("extra") and stored.get("extra"):
        merged["extra"] = _unmasked_extra(str(changes["extra"]), str(stored["extra"]))
    return save_connection(merged, actor=actor, session=session, must_be_new=False)


def _unmasked_extra(new: str, stored: str) -> str:
    try:
        new_data, stored_data = json.loads(new), json.loads(stored)
    except ValueError:
        return new
    if not isinstance(new_data, dict) or not isinstance(stored_data, dict):
        return new
    return json.dumps(_keep_masked(new_data, stored_data))


def _keep_masked(new: Any, stored: Any) -> Any:
    """`new` where each `***` at a place `stored` has a value takes that value back."""
    if isinstance(new, dict) and isinstance(stored, dict):
        return {
            key: stored[key] if value == MASK and key in stored else _keep_masked(value, stored.get(key))
            for key, value in new.items()
        }
    if isinstance(new, list) and isinstance(stored, list) and len(new) == len(stored):
        return [_keep_masked(value, old) for value, old in zip(new, stored, strict=True)]
    return new


def remove_connection(conn_id: str, *, actor: Actor, session: Session) -> None:
    from minisched.db.connections import delete_connection

    connection_fields(conn_id, session=session)
    delete_connection(conn_id, session=session)
    audit(actor, "connection_delete", session=session, extra={"conn_id": conn_id})


def is_sensitive_variable(key: str) -> bool:
    """Whether `key`'s value is a secret: never shown, only `***` (the masking rule, plus the
    `sensitive_var_keys` setting)."""
    from minisched.masking import is_sensitive_key
    from minisched.settings import get_settings

    return is_sensitive_key(key, get_settings().sensitive_var_keys)


def shown_variable(key: str, value: str | None) -> str | None:
    return MASK if value and is_sensitive_variable(key) else value


def get_variable(key: str, *, session: Session) -> tuple[str, str | None, str | None]:
    from minisched.db.fernet import decrypt

    row = session.execute(select(Variable.val, Variable.description).where(Variable.key == key)).first()
    if row is None:
        raise NotFound(f"variable {key!r} does not exist; GET /api/v1/variables lists them")
    return key, shown_variable(key, decrypt(row.val, f"variable {key!r}")), row.description


def list_variables(*, session: Session, page: Page) -> tuple[list[tuple[str, str | None, str | None]], int]:
    from minisched.db.fernet import decrypt

    query = select(Variable.key, Variable.val, Variable.description)
    rows = session.execute(ordered(query, page, {"key": Variable.key}, "key", (Variable.id,)))
    total = int(session.scalar(select(func.count()).select_from(Variable)) or 0)
    return [
        (key, shown_variable(key, decrypt(token, f"variable {key!r}")), description)
        for key, token, description in rows
    ], total


def save_variable(
    key: str, value: str, description: str | None, *, actor: Actor, session: Session, must_be_new: bool | None
) -> tuple[str, str | None, str | None]:
    """Create (`must_be_new`), change (False) or either (None) variable `key`."""
    from minisched.db.variables import set_variable
    from minisched.inputs import check_text

    check_text(key, "the variable key")
    check_text(description or "", "the description")
    exists = session.scalar(select(Variable.id).where(Variable.key == key)) is not None
    if must_be_new is True and exists:
        raise Conflict(f"variable {key!r} already exists; PATCH /api/v1/variables/{key} changes it")
    if must_be_new is False and not exists:
        raise NotFound(f"variable {key!r} does not exist; POST /api/v1/variables creates it")
    try:
        set_variable(key, value, description, session=session)
    except MinischedError as exc:
        raise InvalidInput(str(exc)) from None
    audit(actor, "variable_set", session=session, extra={"key": key})
    return get_variable(key, session=session)


def remove_variable(key: str, *, actor: Actor, session: Session) -> None:
    from minisched.db.variables import delete_variable

    get_variable(key, session=session)
    delete_variable(key, session=session)
    audit(actor, "variable_delete", session=session, extra={"key": key})
