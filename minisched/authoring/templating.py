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
import os
import weakref
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


class _Environments:
    """One Jinja environment per DAG object, with its compiled string templates, built on a try's
    first template and reused by the later tries of a warm worker: building the sandbox and compiling
    a template cost more than a no-op try's whole run. A DAG whose template settings changed since
    (the same object, edited) gets a new one; a re-imported DAG file makes new DAG objects."""

    def __init__(self) -> None:
        self._by_dag: weakref.WeakKeyDictionary[DAG, tuple[tuple[Any, ...], _Environment]] = (
            weakref.WeakKeyDictionary()
        )
        self._no_dag: _Environment | None = None

    def get(self, dag: DAG | None) -> _Environment:
        if dag is None:
            if self._no_dag is None:
                self._no_dag = _Environment(template_environment(None))
            return self._no_dag
        settings = _settings_of(dag)
        entry = self._by_dag.get(dag)
        if entry is None or not _same(entry[0], settings):
            entry = (settings, _Environment(template_environment(dag)))
            self._by_dag[dag] = entry
        return entry[1]


class _Environment:
    """An environment and the templates compiled from strings in it (Jinja caches file templates
    itself, and checks their files' modification times before each use)."""

    MAX_TEMPLATES = 1024

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self._compiled: dict[str, jinja2.Template] = {}

    def from_string(self, source: str) -> jinja2.Template:
        template = self._compiled.get(source)
        if template is None:
            if len(self._compiled) >= self.MAX_TEMPLATES:
                self._compiled.clear()
            template = self._compiled[source] = self.env.from_string(source)
        return template


def _settings_of(dag: DAG) -> tuple[Any, ...]:
    return (
        dag.fileloc,
        tuple(dag.template_searchpath),
        dag.template_undefined,
        dag.render_template_as_native_obj,
        tuple(dag.jinja_environment_kwargs.items()),
        tuple(dag.user_defined_filters.items()),
        tuple(dag.user_defined_macros.items()),
    )


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """Equal settings, values compared by identity (a macro may be any object, its == anything)."""
    if old[:4] != new[:4]:
        return False
    return all(
        len(a) == len(b) and all(ka == kb and va is vb for (ka, va), (kb, vb) in zip(a, b, strict=True))
        for a, b in zip(old[4:], new[4:], strict=True)
    )


_environments = _Environments()


def template_environment(dag: DAG | None) -> jinja2.Environment:
    """The Jinja environment templates of ``dag``'s tasks render in (a new one each call)."""
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

    The Jinja environment is looked up (and jinja2 imported) only once a field holds a string: most
    tries (a PythonOperator without templated arguments) render nothing and should not pay for it."""
    found: list[_Environment] = []

    def env() -> _Environment:  # a plain closure: a functools.cache wrapper per try cost ~10 us
        if not found:
            found.append(_environments.get(task.dag))
        return found[0]

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
    env: Callable[[], _Environment],
    template_ext: tuple[str, ...] = (),
) -> Any:
    """``value`` with every template in it rendered (see the module docstring); ``env()`` gives the
    environment they render in."""
    if isinstance(value, DagParam):
        return value.resolve(context)
    if isinstance(value, str):
        if template_ext and value.endswith(template_ext):
            return resolved(env().env.get_template(value).render(context))
        return resolved(env().from_string(value).render(context))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [render_value(item, context, env, template_ext) for item in value]
        return type(value)(items) if not isinstance(value, list) else items
    if isinstance(value, dict):
        return {key: render_value(item, context, env, template_ext) for key, item in value.items()}
    return value
