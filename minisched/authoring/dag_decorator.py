"""``@dag``: a function whose body builds the tasks of a DAG, as in Airflow's TaskFlow API.

Calling the decorated function creates the DAG (its id defaults to the function's name, its
``doc_md`` to the docstring) and runs the body inside ``with DAG(...)``; it returns the DAG.
The function's parameters become DAG params (their defaults, or the values of the call), and the
body gets a ``DagParam`` for each: passed to a task, it is the param's value in the run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, overload

from minisched.authoring.dag import DAG
from minisched.authoring.params import DagParam
from minisched.exceptions import DagDefinitionError


class DagFunction:
    """A ``@dag``-decorated function: each call builds one DAG."""

    def __init__(self, function: Callable[..., Any], dag_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.dag_kwargs = dag_kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> DAG:
        options = dict(self.dag_kwargs)
        dag_id = options.pop("dag_id", None) or self.function.__name__
        if options.get("doc_md") is None and self.function.__doc__:
            options["doc_md"] = inspect.cleandoc(self.function.__doc__)
        arguments = _bound_arguments(self.function, dag_id, args, kwargs)
        options["params"] = {**(options.get("params") or {}), **arguments}
        with DAG(dag_id, **options) as built:
            self.function(**{name: DagParam(name, value) for name, value in arguments.items()})
        return built


def _bound_arguments(
    function: Callable[..., Any], dag_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The function's parameters with the call's values, else their defaults (Airflow's binding)."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except TypeError as exc:
        raise DagDefinitionError(
            f"@dag function {function.__name__}() of DAG {dag_id!r}: {exc}; give the parameter a "
            "default or pass it when calling the function"
        ) from None
    bound.apply_defaults()
    return dict(bound.arguments)


@overload
def dag(function: Callable[..., Any], /) -> DagFunction: ...


@overload
def dag(dag_id: str = "", /, **dag_kwargs: Any) -> Callable[[Callable[..., Any]], DagFunction]: ...


def dag(
    function: Callable[..., Any] | str = "", /, **dag_kwargs: Any
) -> DagFunction | Callable[[Callable[..., Any]], DagFunction]:
    """``@dag``, ``@dag(schedule=..., start_date=...)`` or ``@dag("dag_id", ...)``."""
    if callable(function):
        return DagFunction(function, dag_kwargs)
    if function:
        dag_kwargs = {"dag_id": function, **dag_kwargs}

    def decorate(body: Callable[..., Any]) -> DagFunction:
        if not callable(body):
            raise DagDefinitionError(f"@dag must decorate a function, got {body!r}")
        return DagFunction(body, dag_kwargs)

    return decorate
