"""The `connection` table as plain fields: encrypted on the way in, decrypted on the way out.

Fields are dicts keyed by column name (`FIELDS`), already validated by the caller (the authoring
layer's `Connection` parses URIs and JSON); this module only stores and reads them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from minisched.db.fernet import decrypt, encrypt
from minisched.db.session import create_session
from minisched.exceptions import MinischedError
from minisched.models import Connection

CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
FIELDS = ("conn_id", "conn_type", "description", "host", "schema", "login", "password", "port", "extra")
_PLAIN = ("conn_type", "description", "host", "schema", "login", "port")


def read_connection(conn_id: str) -> dict[str, Any] | None:
    """One connection's fields in a short session of its own (what a task's lookup costs)."""
    with create_session() as session:
        row = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        return None if row is None else _fields(row)


def get_connection(conn_id: str, *, session: Session) -> dict[str, Any]:
    row = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
    if row is None:
        raise _missing(conn_id)
    return _fields(row)


def list_connections(*, session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Connection).order_by(Connection.conn_id))
    return [_fields(row) for row in rows]


def add_connections(
    connections: Sequence[Mapping[str, Any]], *, session: Session, overwrite: bool = False
) -> None:
    """Store every connection, or none: an id that exists is an error unless `overwrite`."""
    ids = [fields["conn_id"] for fields in connections]
    invalid = [conn_id for conn_id in ids if not CONN_ID.match(str(conn_id))]
    if invalid:
        raise MinischedError(
            f"invalid connection id {invalid[0]!r}: use 1 to 250 letters, digits, '_', '.' or '-'"
        )
    duplicates = sorted(conn_id for conn_id, count in Counter(ids).items() if count > 1)
    if duplicates:
        raise MinischedError(f"connection id(s) given twice: {', '.join(duplicates)}")
    existing = set(session.scalars(select(Connection.conn_id).where(Connection.conn_id.in_(ids))))
    if existing and not overwrite:
        raise MinischedError(
            f"connection(s) {', '.join(sorted(existing))} already exist; delete them first"
            + (" or import with --overwrite" if len(ids) > 1 else "")
        )
    if existing:
        session.execute(delete(Connection).where(Connection.conn_id.in_(sorted(existing))))
    session.add_all(_row(fields) for fields in connections)
    session.flush()


def delete_connection(conn_id: str, *, session: Session) -> None:
    deleted = session.execute(delete(Connection).where(Connection.conn_id == conn_id))
    if not getattr(deleted, "rowcount", 0):
        raise _missing(conn_id)


def _row(fields: Mapping[str, Any]) -> Connection:
    return Connection(
        conn_id=fields["conn_id"],
        password=encrypt(fields.get("password")),
        extra=encrypt(fields.get("extra")),
        **{field: fields.get(field) for field in _PLAIN},
    )


def _fields(row: Connection) -> dict[str, Any]:
    what = f"connection {row.conn_id!r}"
    fields: dict[str, Any] = {field: getattr(row, field) for field in ("conn_id", *_PLAIN)}
    fields["password"] = decrypt(row.password, f"the password of {what}")
    fields["extra"] = decrypt(row.extra, f"the extra of {what}")
    return fields


def _missing(conn_id: str) -> MinischedError:
    return MinischedError(
        f"connection {conn_id!r} does not exist; `minisched connections list` shows the connections"
    )
