"""``@task``: turn a function into a task factory, as Airflow's TaskFlow API does.

Calling the decorated function inside ``with DAG(...)`` creates a task and returns it, so
``extract() >> load()`` works. A task passed as an argument (``load(extract())``, or
``load(extract()["key"])``) becomes an upstream dependency, and the function receives that
task's XCom value when its try runs. With ``multiple_outputs=True`` (or a ``dict`` return
annotation) a returned dict is also stored key by key.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from minisched.authoring.baseoperator import BaseOperator
from minisched.authoring.branching import BranchPythonOperator, ShortCircuitOperator
from minisched.authoring.dag import DAG, current_dag
from minisched.authoring.operators import PythonOperator
from minisched.authoring.task_group import TaskGroup, current_task_group
from minisched.authoring.xcom import XComArg, not_iterable
from minisched.exceptions import DagDefinitionError

if TYPE_CHECKING:
    from minisched.authoring.mapping import OperatorPartial

P = ParamSpec("P")
R = TypeVar("R")


class DecoratedPythonOperator(PythonOperator):
    """The task a ``@task`` function creates; ``task["key"]`` is its value under that XCom key."""

    def __init__(self, task_id: str, *, multiple_outputs: bool = False, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.multiple_outputs = multiple_outputs

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self, key)

    def __iter__(self) -> Iterator[Any]:
        raise not_iterable(self.task_id)


class DecoratedBranchOperator(BranchPythonOperator):
    """The task a ``@task.branch`` function creates."""


class DecoratedShortCircuitOperator(ShortCircuitOperator):
    """The task a ``@task.short_circuit`` function creates."""


class TaskFunction(Generic[P, R]):
    """A ``@task``-decorated function: calling it in a DAG creates a task."""

    __name__: str

    def __init__(
        self,
        function: Callable[P, R],
        task_kwargs: dict[str, Any],
        operator_class: type[PythonOperator] = DecoratedPythonOperator,
    ) -> None:
        self.function = function
        self.task_kwargs = task_kwargs
        self.operator_class = operator_class
        functools.update_wrapper(self, function)

    # Any, not P: context names in the signature are filled at run time, not by the caller.
    def __call__(self, *args: Any, **kwargs: Any) -> PythonOperator:
        options = dict(self.task_kwargs)
        group = options.pop("task_group", None) or current_task_group(options.get("dag"))
        dag = options.pop("dag", None) or (group.dag if group else current_dag())
        if not isinstance(dag, DAG):
            raise DagDefinitionError(
                f"@task function {self.function.__name__}() was called outside a DAG; "
                "call it inside `with DAG(...)`"
            )
        task_id = unique_task_id(dag, options.pop("task_id", None) or self.function.__name__, group)
        if issubclass(self.operator_class, DecoratedPythonOperator):
            multiple_outputs = options.pop("multiple_outputs", None)
            options["multiple_outputs"] = (
                _returns_dict(self.function) if multiple_outputs is None else bool(multiple_outputs)
            )
        # Tasks given as arguments become upstream of the new one (PythonOperator relates them).
        return self.operator_class(
            task_id,
            python_callable=self.function,
            op_args=[_as_value(a) for a in args],
            op_kwargs={k: _as_value(v) for k, v in kwargs.items()},
            dag=dag,
            task_group=group,
            **options,
        )

    def partial(self, *args: Any, **kwargs: Any) -> TaskPartial:
        """Fix some arguments of a mapped task: ``add.partial(y=1).expand(x=[1, 2, 3])``."""
        return TaskPartial(self, args, kwargs)

    def expand(self, **mapped: Any) -> BaseOperator:
        """One task instance per item (per combination of items): ``add.expand(x=[1, 2, 3])``."""
        return TaskPartial(self, (), {}).expand(**mapped)

    def expand_kwargs(self, kwargs_list: Any) -> BaseOperator:
        """One task instance per dict of keyword arguments: ``add.expand_kwargs([{"x": 1}, ...])``."""
        return TaskPartial(self, (), {}).expand_kwargs(kwargs_list)

    def override(self, **task_kwargs: Any) -> TaskFunction[P, R]:
        """A copy with other task arguments: ``report.override(task_id="report_eu")()``."""
        return TaskFunction(self.function, {**self.task_kwargs, **task_kwargs}, self.operator_class)


class TaskPartial:
    """A ``@task`` function with some arguments fixed, waiting for ``expand`` or ``expand_kwargs``."""

    def __init__(
        self, function: TaskFunction[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> BaseOperator:
        self._check_names(mapped)
        return self._partial().expand(**{name: _as_value(value) for name, value in mapped.items()})

    def expand_kwargs(self, kwargs_list: Any) -> BaseOperator:
        if type(kwargs_list) in (list, tuple):
            for item in kwargs_list:
                if isinstance(item, dict):
                    self._check_names(item)
        return self._partial().expand_kwargs(_as_value(kwargs_list))

    def _partial(self) -> OperatorPartial:
        from minisched.authoring.mapping import BASE_ARGUMENTS, OperatorPartial

        options = dict(self.function.task_kwargs)
        group = options.pop("task_group", None) or current_task_group(options.get("dag"))
        dag = options.pop("dag", None) or (group.dag if group else current_dag())
        name = self.function.function.__name__
        if not isinstance(dag, DAG):
            raise DagDefinitionError(
                f"@task function {name}() was mapped outside a DAG; call .expand() inside `with DAG(...)`"
            )
        task_id = unique_task_id(dag, options.pop("task_id", None) or name, group)
        if issubclass(self.function.operator_class, DecoratedPythonOperator):
            multiple_outputs = options.pop("multiple_outputs", None)
            options["multiple_outputs"] = (
                _returns_dict(self.function.function) if multiple_outputs is None else bool(multiple_outputs)
            )
        fixed = {
            "python_callable": self.function.function,
            "op_args": [_as_value(a) for a in self.args],
            "op_kwargs": {k: _as_value(v) for k, v in self.kwargs.items()},
        }
        base = {k: v for k, v in options.items() if k in BASE_ARGUMENTS}
        own = {k: v for k, v in options.items() if k not in BASE_ARGUMENTS}
        kwargs = {"task_id": task_id, "dag": dag, "task_group": group, **base, **own, **fixed}
        return OperatorPartial(self.function.operator_class, kwargs, mapped_into="op_kwargs")

    def _check_names(self, mapped: Mapping[str, Any]) -> None:
        import inspect

        function = self.function.function
        parameters = inspect.signature(function).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
        for name in mapped:
            if name in self.kwargs:
                raise DagDefinitionError(
                    f"@task {function.__name__}(): {name!r} is given to both partial() and expand()"
                )
            if name not in parameters and not takes_any:
                raise DagDefinitionError(f"@task {function.__name__}() has no argument {name!r} to map")


class TaskDecorator:
    """``@task`` and its variants ``@task.branch`` and ``@task.short_circuit``, as in Airflow."""

    def __init__(self, operator_class: type[PythonOperator] = DecoratedPythonOperator) -> None:
        self.operator_class = operator_class

    @overload
    def __call__(self, python_callable: Callable[P, R], /) -> TaskFunction[P, R]: ...

    @overload
    def __call__(
        self, python_callable: None = None, /, **task_kwargs: Any
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...

    def __call__(
        self, python_callable: Callable[P, R] | None = None, /, **task_kwargs: Any
    ) -> TaskFunction[P, R] | Callable[[Callable[P, R]], TaskFunction[P, R]]:
        """Decorate a function as a task: ``@task`` or ``@task(retries=3, pool="db", ...)``."""
        if python_callable is not None:
            if not callable(python_callable):
                raise DagDefinitionError(f"@task must decorate a function, got {python_callable!r}")
            return TaskFunction(python_callable, task_kwargs, self.operator_class)

        def decorate(function: Callable[P, R]) -> TaskFunction[P, R]:
            return TaskFunction(function, task_kwargs, self.operator_class)

        return decorate

    @property
    def branch(self) -> TaskDecorator:
        """``@task.branch``: the function returns the task id(s) to follow (BranchPythonOperator)."""
        return TaskDecorator(DecoratedBranchOperator)

    @property
    def short_circuit(self) -> TaskDecorator:
        """``@task.short_circuit``: a falsy return value skips what follows (ShortCircuitOperator)."""
        return TaskDecorator(DecoratedShortCircuitOperator)


task = TaskDecorator()


def _as_value(argument: Any) -> Any:
    """A task given as an argument (also inside a list, tuple or dict) stands for its return value."""
    if isinstance(argument, BaseOperator):
        return XComArg(argument)
    if type(argument) in (list, tuple):
        return type(argument)(_as_value(item) for item in argument)
    if type(argument) is dict:
        return {key: _as_value(item) for key, item in argument.items()}
    return argument


def _returns_dict(function: Callable[..., Any]) -> bool:
    """Airflow infers multiple_outputs from a ``dict`` (or ``dict[str, ...]``) return annotation."""
    import typing

    try:
        annotation = typing.get_type_hints(function).get("return")
    except Exception:  # unresolvable forward references: no inference, as in Airflow
        return False
    return annotation is dict or typing.get_origin(annotation) is dict


def unique_task_id(dag: DAG, task_id: str, group: TaskGroup | None = None) -> str:
    """``task_id``, or Airflow's next free ``task_id__N`` when the DAG already has it.

    Inside a group the check uses the prefixed id; the returned id is unprefixed (the
    operator adds the prefix).
    """
    full_id = group.child_id(task_id) if group else task_id
    if full_id not in dag.task_dict:
        return task_id
    core = re.split(r"__\d+$", task_id)[0]
    full_core = group.child_id(core) if group else core
    pattern = re.compile(rf"^{re.escape(full_core)}__(\d+)$")
    suffixes = [int(m[1]) for tid in dag.task_dict if (m := pattern.match(tid))]
    return f"{core}__{max(suffixes, default=0) + 1}"
