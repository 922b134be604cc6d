"""The `variable` table: values encrypted on the way in, decrypted on the way out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from minisched.db.audit import record_event
from minisched.db.fernet import decrypt, encrypt
from minisched.db.session import create_session
from minisched.exceptions import MinischedError
from minisched.models import Variable


def read_variable(key: str) -> str | None:
    """One variable's value in a short session of its own (what a task's lookup costs)."""
    with create_session() as session:
        return get_variable(key, session=session)


def write_variable(key: str, value: str, description: str | None = None, *, by: Mapping[str, Any]) -> None:
    """Create or replace `key` from DAG code, with its audit row (`by`: the try that asked, if any)."""
    with create_session() as session:
        set_variable(key, value, description, session=session)
        _audit("variable_set", key, by, session=session)


def remove_variable(key: str, *, by: Mapping[str, Any]) -> None:
    """Delete `key` from DAG code, with its audit row (`by`: the try that asked, if any)."""
    with create_session() as session:
        delete_variable(key, session=session)
        _audit("variable_delete", key, by, session=session)


def _audit(action: str, key: str, by: Mapping[str, Any], *, session: Session) -> None:
    """`task_<action>` naming the try when a task changed the variable, else `<action>`; never the value."""
    event = f"task_{action}" if by else action
    record_event(event, session=session, extra={"key": key}, **by)


def get_variable(key: str, *, session: Session) -> str | None:
    token = session.scalar(select(Variable.val).where(Variable.key == key))
    return decrypt(token, f"variable {key!r}")


def set_variable(key: str, value: str, description: str | None = None, *, session: Session) -> bool:
    """Create or replace `key` (its description too, when given); True when it was created."""
    if not key or len(key) > 250:
        raise MinischedError(f"invalid variable key {key!r}: use 1 to 250 characters")
    values: dict[str, Any] = {"val": encrypt(value)}
    if description is not None:
        values["description"] = description
    changed = session.execute(
        update(Variable)
        .where(Variable.key == key)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0):
        return False
    session.add(Variable(key=key, val=values["val"], description=description))
    session.flush()
    return True


def set_variables(values: Mapping[str, tuple[str, str | None]], *, session: Session) -> None:
    """Create or replace every (value, description) of `values` in the caller's transaction."""
    for key, (value, description) in values.items():
        set_variable(key, value, description, session=session)


def delete_variable(key: str, *, session: Session) -> None:
    deleted = session.execute(delete(Variable).where(Variable.key == key))
    if not getattr(deleted, "rowcount", 0):
        raise MinischedError(
            f"variable {key!r} does not exist; `minisched variables list` shows the variables"
        )


def list_variables(*, session: Session) -> list[dict[str, Any]]:
    """Every variable's key and description (values stay in the database)."""
    rows = session.execute(select(Variable.key, Variable.description).order_by(Variable.key))
    return [{"key": key, "description": description} for key, description in rows]


def all_variables(*, session: Session) -> dict[str, str | None]:
    """Every variable's value, decrypted (for export)."""
    rows = session.execute(select(Variable.key, Variable.val).order_by(Variable.key))
    return {key: decrypt(token, f"variable {key!r}") for key, token in rows}
