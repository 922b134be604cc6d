"""The context a task try receives: run identity and data interval, as Airflow names them."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from minisched.authoring.schedules import to_utc

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator

# The names a DAG author may ask for; executors must provide at least these.
CONTEXT_KEYS: tuple[str, ...] = (
    "dag_id",
    "task_id",
    "run_id",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "ds",
    "try_number",
    "conf",
)
ENV_VARS: Mapping[str, str] = {
    "dag_id": "MINISCHED_DAG_ID",
    "task_id": "MINISCHED_TASK_ID",
    "run_id": "MINISCHED_RUN_ID",
    "logical_date": "MINISCHED_LOGICAL_DATE",
    "data_interval_start": "MINISCHED_DATA_INTERVAL_START",
    "data_interval_end": "MINISCHED_DATA_INTERVAL_END",
    "ds": "MINISCHED_DS",
    "try_number": "MINISCHED_TRY_NUMBER",
}
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_]\w*)((?:\.\w+)*)\s*\}\}")


_current_context: ContextVar[dict[str, Any] | None] = ContextVar("minisched_task_context", default=None)


def get_current_context() -> dict[str, Any]:
    """The context of the try running in this process, from anywhere in the task's code (Airflow's)."""
    context = _current_context.get()
    if context is None:
        raise RuntimeError(
            "get_current_context() was called outside a running task; call it from inside "
            "a task's callable (or a function it calls)"
        )
    return context


@contextmanager
def running_with_context(context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Make ``context`` what ``get_current_context()`` returns while the block runs."""
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)


def build_context(  # noqa: PLR0917 -- the executor's call mirrors the contract's names
    dag_id: str,
    task_id: str,
    run_id: str,
    logical_date: datetime,
    data_interval_start: datetime,
    data_interval_end: datetime,
    try_number: int,
    conf: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The context dict of one try; ``ds``/``ts`` are derived from the UTC logical date.

    Besides the contract's names it carries Airflow's ``ts``, ``ds_nodash``, ``ts_nodash``,
    ``params`` (DAG params overridden by the run's conf) and ``execution_date`` (an alias
    of ``logical_date`` that Airflow 2 still accepts), so ported callables keep working.
    """
    logical = to_utc(logical_date)
    run_conf = dict(conf or {})
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": to_utc(data_interval_start),
        "data_interval_end": to_utc(data_interval_end),
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": logical.isoformat(),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "try_number": try_number,
        "conf": run_conf,
        "params": {**(params or {}), **run_conf},
    }


def task_context(
    task: BaseOperator,
    *,
    run_id: str,
    logical_date: datetime,
    data_interval_start: datetime,
    data_interval_end: datetime,
    try_number: int,
    conf: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``build_context`` for a task object, taking dag_id and params from its DAG."""
    dag = task.dag
    return build_context(
        dag_id=dag.dag_id if dag else "",
        task_id=task.task_id,
        run_id=run_id,
        logical_date=logical_date,
        data_interval_start=data_interval_start,
        data_interval_end=data_interval_end,
        try_number=try_number,
        conf=conf,
        params=dag.params if dag else None,
    )


def context_env(context: Mapping[str, Any]) -> dict[str, str]:
    """The MINISCHED_* environment variables a BashOperator process gets."""
    env: dict[str, str] = {}
    for key, var in ENV_VARS.items():
        value = context.get(key)
        if value is None:
            continue
        env[var] = value.isoformat() if isinstance(value, datetime) else str(value)
    return env


def render_template(text: str, context: Mapping[str, Any]) -> str:
    """Replace ``{{ name }}`` and ``{{ name.key }}`` for context names; leave the rest as is.

    A tiny subset of Airflow's Jinja templating, enough for ``echo {{ ds }}`` and
    ``{{ params.table }}``; other ``{{ ... }}`` text (filters, macros, Go templates in
    shell commands) is passed through untouched.
    """

    def replace(match: re.Match[str]) -> str:
        name, path = match[1], match[2]
        if name not in context:
            return match[0]
        value: Any = context[name]
        for part in path.split(".")[1:]:
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif hasattr(value, part):
                value = getattr(value, part)
            else:
                return match[0]
        return value.isoformat() if isinstance(value, datetime) else str(value)

    return _TEMPLATE.sub(replace, text) if "{{" in text else text
