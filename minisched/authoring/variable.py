"""`Variable`: key/value settings that DAG code reads at run time, as Airflow users write it.

`Variable.get(key)` reads `MINISCHED_VAR_<KEY>` first, then the `variable` table; the database layer
is imported only then. A value whose key looks sensitive (password, secret, token, ...) is masked in
the try's log.
"""

from __future__ import annotations

import json
import os
from typing import Any

from minisched import masking
from minisched.exceptions import VariableNotFound

ENV_PREFIX = "MINISCHED_VAR_"
_NOTHING: Any = object()


class Variable:
    """Read, write and delete variables from DAG code (each call is one short database statement)."""

    @staticmethod
    def get(key: str, default_var: Any = _NOTHING, deserialize_json: bool = False) -> Any:
        """The value of `key` (parsed as JSON if asked); `default_var` if it is not set, else KeyError."""
        text = os.environ.get(env_name(key))
        if text is None:
            from minisched.db.variables import read_variable

            text = read_variable(key)
        if text is None:
            if default_var is not _NOTHING:
                return default_var
            raise VariableNotFound(
                f"variable {key!r} is not set: set it with `minisched variables set {key} VALUE` "
                f"or {env_name(key)}, or pass default_var"
            )
        if is_sensitive(key):
            masking.register_secret(text)
        if not deserialize_json:
            return text
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"variable {key!r} is not valid JSON ({exc.msg}); read it without deserialize_json"
            ) from None

    @staticmethod
    def set(key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        """Create or replace `key` in the database (stored encrypted)."""
        from minisched.db.variables import write_variable

        text = json.dumps(value) if serialize_json else str(value)
        if is_sensitive(key):
            masking.register_secret(text)
        write_variable(key, text, description, by=_running_try())

    @staticmethod
    def delete(key: str) -> None:
        """Remove `key` from the database (an error if it is not there)."""
        from minisched.db.variables import remove_variable

        remove_variable(key, by=_running_try())


def _running_try() -> dict[str, Any]:
    """The try whose code is running here (for the audit row of a change it makes), or {} outside one."""
    from minisched.authoring.context import current_context_or_none

    context = current_context_or_none()
    if context is None:
        return {}
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number}


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def is_sensitive(key: str) -> bool:
    """Whether `key` looks like it holds a secret (built-in words plus the `sensitive_var_keys` setting)."""
    from minisched.settings import get_settings

    return masking.is_sensitive_key(key, get_settings().sensitive_var_keys)
