"""minisched: a small, fast workflow scheduler with an Airflow-style metadata database.

The authoring API is exported lazily so that `import minisched` (and the CLI) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DAG": "minisched.authoring",
    "BaseOperator": "minisched.authoring",
    "PythonOperator": "minisched.authoring",
    "BashOperator": "minisched.authoring",
    "task": "minisched.authoring",
    "SkipTask": "minisched.exceptions",
    "Variable": "minisched.authoring.variable",
    "Connection": "minisched.authoring.connection",
    "BaseHook": "minisched.authoring.connection",
}

__all__ = [
    "DAG",
    "BaseHook",
    "BaseOperator",
    "BashOperator",
    "Connection",
    "PythonOperator",
    "SkipTask",
    "Variable",
    "task",
]

if TYPE_CHECKING:
    from minisched.authoring import DAG, BaseOperator, BashOperator, PythonOperator, task
    from minisched.authoring.connection import BaseHook, Connection
    from minisched.authoring.variable import Variable
    from minisched.exceptions import SkipTask


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'minisched' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
