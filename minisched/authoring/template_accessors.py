"""``var`` and ``conn`` in the task context: lazy look-ups, as Airflow's templates use them.

``{{ var.value.KEY }}``, ``{{ var.json.KEY.field }}``, ``{{ var.value.get("KEY", "default") }}``,
``{{ conn.ID.host }}`` and ``{{ conn.get("ID").login }}`` read a variable or a connection only when the
template asks for it (environment first, then the database), so a try that uses neither reads nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minisched.authoring.connection import Connection

_NO_DEFAULT: Any = object()


class VariableValues:
    """``var.value`` (text) or ``var.json`` (parsed JSON): attribute access reads that variable."""

    def __init__(self, *, deserialize_json: bool) -> None:
        self._json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):  # copy, pickle and Jinja probe dunders; they are not variables
            raise AttributeError(key)
        return self.get(key)

    def get(self, key: str, default_var: Any = _NO_DEFAULT) -> Any:
        from minisched.authoring.variable import Variable

        if default_var is _NO_DEFAULT:
            return Variable.get(key, deserialize_json=self._json)
        return Variable.get(key, default_var, deserialize_json=self._json)

    def __repr__(self) -> str:
        return f"<var.{'json' if self._json else 'value'}>"


class VariableAccessor:
    """``var`` in the context."""

    def __init__(self) -> None:
        self.value = VariableValues(deserialize_json=False)
        self.json = VariableValues(deserialize_json=True)

    def __repr__(self) -> str:
        return "<var>"


class ConnectionAccessor:
    """``conn`` in the context: attribute access reads that connection."""

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        from minisched.authoring.connection import Connection

        return Connection.get(conn_id)

    def get(self, conn_id: str, default_conn: Any = _NO_DEFAULT) -> Any:
        from minisched.authoring.connection import Connection
        from minisched.exceptions import ConnectionNotFound

        try:
            return Connection.get(conn_id)
        except ConnectionNotFound:
            if default_conn is _NO_DEFAULT:
                raise
            return default_conn

    def __repr__(self) -> str:
        return "<conn>"
