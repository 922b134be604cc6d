"""minisched: a small, fast workflow scheduler with an Airflow-style metadata database.

The authoring API is exported lazily, under Airflow's names, so that `import minisched` (and
the CLI) stays cheap: `from minisched import DAG, task, TaskGroup` imports only the authoring layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_AUTHORING = "minisched.authoring"
_EXCEPTIONS = "minisched.exceptions"
_EXPORTS = {
    "DAG": _AUTHORING,
    "dag": _AUTHORING,
    "task": _AUTHORING,
    "task_group": _AUTHORING,
    "TaskGroup": _AUTHORING,
    "BaseOperator": _AUTHORING,
    "PythonOperator": _AUTHORING,
    "BashOperator": _AUTHORING,
    "EmptyOperator": _AUTHORING,
    "BranchPythonOperator": _AUTHORING,
    "ShortCircuitOperator": _AUTHORING,
    "chain": _AUTHORING,
    "cross_downstream": _AUTHORING,
    "get_current_context": _AUTHORING,
    "TriggerRule": _AUTHORING,
    "Param": _AUTHORING,
    "SkipTask": _EXCEPTIONS,
    "FailTask": _EXCEPTIONS,
    "Variable": "minisched.authoring.variable",
    "Connection": "minisched.authoring.connection",
    "BaseHook": "minisched.authoring.connection",
}

__all__ = [
    "DAG",
    "BaseHook",
    "BaseOperator",
    "BashOperator",
    "BranchPythonOperator",
    "Connection",
    "EmptyOperator",
    "FailTask",
    "Param",
    "PythonOperator",
    "ShortCircuitOperator",
    "SkipTask",
    "TaskGroup",
    "TriggerRule",
    "Variable",
    "chain",
    "cross_downstream",
    "dag",
    "get_current_context",
    "task",
    "task_group",
]

if TYPE_CHECKING:
    from minisched.authoring import (
        DAG,
        BaseOperator,
        BashOperator,
        BranchPythonOperator,
        EmptyOperator,
        Param,
        PythonOperator,
        ShortCircuitOperator,
        TaskGroup,
        TriggerRule,
        chain,
        cross_downstream,
        get_current_context,
        task,
    )
    from minisched.authoring.connection import BaseHook, Connection
    from minisched.authoring.dag_decorator import dag
    from minisched.authoring.task_group import task_group
    from minisched.authoring.variable import Variable
    from minisched.exceptions import FailTask, SkipTask


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'minisched' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
