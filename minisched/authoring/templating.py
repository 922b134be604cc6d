"""Jinja templating of an operator's ``template_fields``, with Airflow 2.10's rules.

Each field is rendered just before the try runs: strings as Jinja templates (a string ending in one
of the operator's ``template_ext``, e.g. ``.sh``, names a template file found next to the DAG file or
in ``template_searchpath``), lists, tuples, sets and dict values recursively, anything else as is.
Undefined names are errors (``StrictUndefined``), as in Airflow. The DAG's
``render_template_as_native_obj``, ``user_defined_macros`` and ``user_defined_filters`` shape the
environment. Jinja2 is imported only when something is rendered.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from minisched.authoring.lazy import resolved
from minisched.authoring.params import DagParam
from minisched.exceptions import TaskFailure

if TYPE_CHECKING:
    import jinja2

    from minisched.authoring.baseoperator import BaseOperator
    from minisched.authoring.dag import DAG

_Op = TypeVar("_Op", bound="BaseOperator")


class TemplateError(TaskFailure):
    """A template field could not be rendered; the message names the field and Jinja's reason."""


def _ds(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _ds_nodash(value: datetime) -> str:
    return value.strftime("%Y%m%d")


def _ts(value: datetime) -> str:
    return value.isoformat()


def _ts_nodash(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value: datetime) -> str:
    return value.isoformat().replace("-", "").replace(":", "")


# Airflow's built-in filters: `{{ data_interval_end | ds }}`.
FILTERS = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}


def template_environment(dag: DAG | None) -> jinja2.Environment:
    """The Jinja environment templates of ``dag``'s tasks render in."""
    import jinja2
    import jinja2.nativetypes
    import jinja2.sandbox

    class Sandboxed(jinja2.sandbox.SandboxedEnvironment):
        """Airflow's sandbox: only Python's internal attributes are off limits, methods may be called."""

        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            return not jinja2.sandbox.is_internal_attribute(obj, attr)

    searchpath = [os.path.dirname(dag.fileloc), *dag.template_searchpath] if dag else []
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(searchpath),
        "undefined": (dag.template_undefined if dag else None) or jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
        **(dag.jinja_environment_kwargs if dag else {}),
    }
    native = dag is not None and dag.render_template_as_native_obj
    env: jinja2.Environment = (
        jinja2.nativetypes.NativeEnvironment(**options) if native else Sandboxed(**options)
    )
    env.filters.update(FILTERS)
    if dag is not None:
        env.filters.update(dag.user_defined_filters)
        env.globals.update(dag.user_defined_macros)
    return env


def rendered_copy(task: _Op, context: Mapping[str, Any]) -> _Op:
    """A shallow copy of ``task`` with its template fields rendered; the original is left as written,
    so a warm worker that runs the task again renders the templates again.

    The Jinja environment is built (and jinja2 imported) only once a field holds a string: most
    tries (a PythonOperator without templated arguments) render nothing and should not pay for it."""
    env = functools.cache(lambda: template_environment(task.dag))
    rendered = copy.copy(task)
    for name in task.template_fields:
        value = getattr(task, name)
        try:
            setattr(rendered, name, render_value(value, context, env, task.template_ext))
        except Exception as exc:
            raise TemplateError(
                f"Could not render template field {name!r} of task {task.task_id!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return rendered


def render_value(
    value: Any,
    context: Mapping[str, Any],
    env: Callable[[], jinja2.Environment],
    template_ext: tuple[str, ...] = (),
) -> Any:
    """``value`` with every template in it rendered (see the module docstring); ``env()`` gives the
    environment they render in."""
    if isinstance(value, DagParam):
        return value.resolve(context)
    if isinstance(value, str):
        if template_ext and value.endswith(template_ext):
            return resolved(env().get_template(value).render(context))
        return resolved(env().from_string(value).render(context))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [render_value(item, context, env, template_ext) for item in value]
        return type(value)(items) if not isinstance(value, list) else items
    if isinstance(value, dict):
        return {key: render_value(item, context, env, template_ext) for key, item in value.items()}
    return value
