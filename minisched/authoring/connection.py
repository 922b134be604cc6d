"""`Connection` and `BaseHook`: how a task finds an outside system, as Airflow users write it.

`Connection.get(conn_id)` reads `MINISCHED_CONN_<ID>` (a URI or JSON) first, then the `connection`
table; the database layer is imported only then, so DAG files import this without SQLAlchemy.
The password (and secret-looking extras) of a connection read this way are masked in the try's log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from minisched import masking
from minisched.exceptions import ConnectionNotFound, InvalidConnection

ENV_PREFIX = "MINISCHED_CONN_"
FIELDS = ("conn_id", "conn_type", "description", "host", "schema", "login", "password", "port", "extra")
_EXTRA_PARAM = "__extra__"


class Connection:
    """The fields of one connection; `extra` is JSON text, `extra_dejson` its dict."""

    def __init__(
        self,
        conn_id: str,
        *,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | Mapping[str, Any] | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.description = description
        if uri is not None:
            if conn_type is not None or host is not None or login is not None or password is not None:
                raise InvalidConnection(f"connection {conn_id!r}: give either a URI or the fields, not both")
            self._set_from_uri(uri)
        else:
            self.conn_type = conn_type or ""
            self.host, self.login, self.password, self.schema = host, login, password, schema
            self.port = _port(port, conn_id)
            self.extra = _extra_text(extra, conn_id)

    def __repr__(self) -> str:
        return f"Connection(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """`extra` as a dict ({} when empty)."""
        return _extra_dict(self.extra, self.conn_id)

    def get_uri(self) -> str:
        """`type://login:password@host:port/schema?extras`, every part percent-encoded (Airflow's form)."""
        uri = f"{self.conn_type.replace('_', '-')}://"
        if self.login is not None or self.password is not None:
            uri += quote(self.login or "", safe="")
            if self.password is not None:
                uri += ":" + quote(self.password, safe="")
            uri += "@"
        uri += quote(self.host or "", safe="")
        if self.port is not None:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        extra = self.extra_dejson
        if extra:
            flat = all(isinstance(value, str) for value in extra.values())
            query = urlencode(extra) if flat else urlencode({_EXTRA_PARAM: json.dumps(extra)})
            uri += ("" if self.schema else "/") + "?" + query
        return uri

    def to_fields(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in FIELDS}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Connection:
        return cls(str(fields["conn_id"]), **{field: fields.get(field) for field in FIELDS[1:]})

    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        """A connection from a JSON object of its fields (`extra` may be an object or JSON text)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidConnection(f"connection {conn_id!r}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise InvalidConnection(f"connection {conn_id!r}: expected a JSON object of its fields")
        return cls.from_mapping(conn_id, data)

    @classmethod
    def from_mapping(cls, conn_id: str, data: Mapping[str, Any]) -> Connection:
        """A connection from a dict of its fields, as in an export file (or with a "uri" key)."""
        unknown = sorted(set(data) - set(FIELDS) - {"uri"})
        if unknown:
            raise InvalidConnection(
                f"connection {conn_id!r}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
            )
        if data.get("uri") is not None:
            return cls(conn_id, uri=str(data["uri"]), description=data.get("description"))
        values = {field: data.get(field) for field in FIELDS if field != "conn_id"}
        return cls(conn_id, **values)

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """The connection `conn_id`: `MINISCHED_CONN_<ID>` first, then the database (one short read)."""
        connection = from_environment(conn_id)
        if connection is None:
            from minisched.db.connections import read_connection

            fields = read_connection(conn_id)
            if fields is not None:
                connection = cls.from_fields(fields)
        if connection is None:
            raise ConnectionNotFound(
                f"connection {conn_id!r} is not defined: add it with `minisched connections add {conn_id} "
                f"...` or set {env_name(conn_id)}"
            )
        connection.register_secrets()
        return connection

    get_connection_from_secrets = get

    def register_secrets(self) -> None:
        """Have the try's log mask this connection's password and its secret-looking extras."""
        masking.register_secret(self.password)
        extra = _safe_extra(self.extra)
        if extra:
            masking.register_sensitive(extra)

    def _set_from_uri(self, uri: str) -> None:
        parts = urlsplit(uri)
        if not parts.scheme or "://" not in uri:
            raise InvalidConnection(
                f"connection {self.conn_id!r}: {masked_uri(uri)!r} is not a URI like type://login:password@"
                "host:port/schema"
            )
        # Airflow's rule: the SQLAlchemy-style scheme names the "postgres" connection type.
        self.conn_type = "postgres" if parts.scheme == "postgresql" else parts.scheme.replace("-", "_")
        self.host = unquote(parts.hostname) if parts.hostname else None
        self.login = unquote(parts.username) if parts.username is not None else None
        self.password = unquote(parts.password) if parts.password is not None else None
        try:
            port = parts.port
        except ValueError:
            raise InvalidConnection(
                f"connection {self.conn_id!r}: the port in the URI is not a number"
            ) from None
        self.port = port
        self.schema = unquote(parts.path.lstrip("/")) or None
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if _EXTRA_PARAM in query:
            self.extra = _extra_text(query[_EXTRA_PARAM], self.conn_id)
        else:
            self.extra = json.dumps(query) if query else None


class BaseHook:
    """Airflow's entry point for connections, kept for DAG code that calls it."""

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get(conn_id)


def env_name(conn_id: str) -> str:
    return ENV_PREFIX + conn_id.upper()


def from_environment(conn_id: str) -> Connection | None:
    """`MINISCHED_CONN_<ID>` as a connection: JSON when it starts with `{`, else a URI."""
    value = os.environ.get(env_name(conn_id))
    if not value:
        return None
    try:
        if value.lstrip().startswith("{"):
            return Connection.from_json(conn_id, value)
        return Connection(conn_id, uri=value.strip())
    except InvalidConnection as exc:
        raise InvalidConnection(f"{env_name(conn_id)}: {exc}") from None


def masked_uri(uri: str) -> str:
    """A URI with its password replaced by `***`, for error messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)


def _port(value: Any, conn_id: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidConnection(f"connection {conn_id!r}: port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise InvalidConnection(f"connection {conn_id!r}: port {port} is not between 1 and 65535")
    return port


def _extra_text(value: str | Mapping[str, Any] | None, conn_id: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    _extra_dict(value, conn_id)
    return value


def _extra_dict(text: str | None, conn_id: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidConnection(f"connection {conn_id!r}: extra is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InvalidConnection(f"connection {conn_id!r}: extra must be a JSON object, got {text[:40]!r}")
    return data


def _safe_extra(text: str | None) -> dict[str, Any]:
    try:
        return _extra_dict(text, "")
    except InvalidConnection:
        return {}
