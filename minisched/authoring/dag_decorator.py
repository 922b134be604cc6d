"""``@dag``: a function whose body builds the tasks of a DAG, as in Airflow's TaskFlow API.

Calling the decorated function creates the DAG (its id defaults to the function's name, its
``doc_md`` to the docstring) and runs the body inside ``with DAG(...)``; it returns the DAG.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, overload

from minisched.authoring.dag import DAG
from minisched.exceptions import DagDefinitionError


class DagFunction:
    """A ``@dag``-decorated function: each call builds one DAG."""

    def __init__(self, function: Callable[[], Any], dag_kwargs: dict[str, Any]) -> None:
        _refuse_parameters(function)
        self.function = function
        self.dag_kwargs = dag_kwargs
        functools.update_wrapper(self, function)

    def __call__(self) -> DAG:
        options = dict(self.dag_kwargs)
        dag_id = options.pop("dag_id", None) or self.function.__name__
        if options.get("doc_md") is None and self.function.__doc__:
            options["doc_md"] = inspect.cleandoc(self.function.__doc__)
        with DAG(dag_id, **options) as built:
            self.function()
        return built


def _refuse_parameters(function: Callable[..., Any]) -> None:
    """Airflow passes DAG params as lazy arguments; minisched cannot, so it says so at import."""
    names = list(inspect.signature(function).parameters)
    if names:
        raise DagDefinitionError(
            f"@dag function {function.__name__}() takes parameters ({', '.join(names)}); minisched does "
            "not pass DAG params as arguments: declare them with @dag(params={...}) and read "
            "params from the task context"
        )


@overload
def dag(function: Callable[[], Any], /) -> DagFunction: ...


@overload
def dag(dag_id: str = "", /, **dag_kwargs: Any) -> Callable[[Callable[[], Any]], DagFunction]: ...


def dag(
    function: Callable[[], Any] | str = "", /, **dag_kwargs: Any
) -> DagFunction | Callable[[Callable[[], Any]], DagFunction]:
    """``@dag``, ``@dag(schedule=..., start_date=...)`` or ``@dag("dag_id", ...)``."""
    if callable(function):
        return DagFunction(function, dag_kwargs)
    if function:
        dag_kwargs = {"dag_id": function, **dag_kwargs}

    def decorate(body: Callable[[], Any]) -> DagFunction:
        if not callable(body):
            raise DagDefinitionError(f"@dag must decorate a function, got {body!r}")
        return DagFunction(body, dag_kwargs)

    return decorate
