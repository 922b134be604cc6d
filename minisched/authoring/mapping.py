"""Dynamic task mapping: ``.partial(...).expand(...)`` and ``.expand_kwargs(...)``, as in Airflow 2.10.

A mapped task is one task of the DAG (a ``MappedOperator``) that runs as many task instances as its
input has items. The scheduler learns that count from ``expand_sources`` (a literal list's length, or
the upstream XCom value to count) and never imports the DAG file. The worker builds the concrete
operator of one instance with ``unmap(map_index, ti)``: the partial arguments plus that instance's
item, every XCom reference resolved.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from minisched.authoring.baseoperator import TASK_DEFAULTS, BaseOperator
from minisched.authoring.xcom import XComArg, XComPuller, resolve_args, upstream_of
from minisched.exceptions import DagDefinitionError, TaskFailure

#: BaseOperator's own arguments: they configure the mapped task itself, the same for every instance.
BASE_ARGUMENTS = frozenset({*TASK_DEFAULTS, "dag", "task_group", "default_args", "doc", "doc_md"})
#: Attributes BaseOperator resolves (from arguments and default_args) that a concrete instance keeps.
_RESOLVED_ATTRIBUTES = (
    "owner",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "pool",
    "pool_slots",
    "queue",
    "priority_weight",
    "weight_rule",
    "trigger_rule",
    "depends_on_past",
    "callbacks",
    "do_xcom_push",
    "doc",
    "task_group",
    "_upstream",
    "_downstream",
    "_dag",
)

#: What one mapped argument is: a literal list, or another task's XCom value (a list).
MapSource = Sequence[Any] | XComArg


class ExpandInput:
    """The mapped arguments of a task: ``expand(a=[..], b=..)`` (every combination of the items, as
    Airflow's cross product) or ``expand_kwargs(...)`` (one dict of arguments per instance)."""

    def __init__(self, sources: Mapping[str, MapSource] | MapSource, *, per_instance_dicts: bool) -> None:
        self.sources = sources
        self.per_instance_dicts = per_instance_dicts

    def named_sources(self) -> list[tuple[str, MapSource]]:
        if self.per_instance_dicts:
            return [("", self.sources)]  # type: ignore[list-item]
        assert isinstance(self.sources, Mapping)
        return list(self.sources.items())

    def to_json(self) -> list[dict[str, Any]]:
        """What the scheduler needs to count instances: one entry per source, the count is their product."""
        entries: list[dict[str, Any]] = []
        for _, source in self.named_sources():
            if isinstance(source, XComArg):
                entries.append({"task_id": source.operator.task_id, "key": source.key})
            else:
                entries.append({"length": len(source)})
        return entries

    def arguments(self, map_index: int, ti: XComPuller, task_id: str) -> dict[str, Any]:
        """The arguments of instance `map_index`, read from the sources (their XCom pulled now)."""
        if map_index < 0:
            raise TaskFailure(
                f"task {task_id!r} is mapped: run one of its instances, by its map_index (--map-index N)"
            )
        names = self.named_sources()
        values = [_resolved_list(source, ti, task_id, name) for name, source in names]
        combos = itertools.product(*values)
        combo = next(itertools.islice(combos, map_index, None), None)
        if combo is None:
            raise TaskFailure(
                f"mapped task {task_id!r} has no input for map_index {map_index}: its upstream value "
                f"now has {_product(len(v) for v in values)} item(s); clear the mapped task with its upstream"
            )
        if not self.per_instance_dicts:
            return {name: item for (name, _), item in zip(names, combo, strict=True)}
        kwargs = combo[0]
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise TaskFailure(
                f"mapped task {task_id!r}: expand_kwargs needs a list of dicts with string keys, item "
                f"{map_index} is {type(kwargs).__name__}"
            )
        return dict(kwargs)


def _resolved_list(source: MapSource, ti: XComPuller, task_id: str, name: str) -> list[Any]:
    value = source.resolve(ti) if isinstance(source, XComArg) else source
    if not isinstance(value, (list, tuple)):
        where = f"argument {name!r}" if name else "expand_kwargs"
        raise TaskFailure(
            f"mapped task {task_id!r}: {where} must be a list to map over, got {type(value).__name__}"
        )
    return list(value)


def _product(lengths: Any) -> int:
    total = 1
    for length in lengths:
        total *= length
    return total


class MappedOperator(BaseOperator):
    """A task that runs once per item of its mapped input; each run is a concrete ``operator_class``.

    ``mapped_into`` names the operator argument the items go into (``op_kwargs`` for ``@task``),
    None for the constructor's own arguments (``BashOperator.partial(...).expand(bash_command=...)``).
    """

    def __init__(
        self,
        task_id: str,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: Mapping[str, Any],
        expand_input: ExpandInput,
        mapped_into: str | None = None,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(task_id, **base_kwargs)
        self.operator_class = operator_class
        self.partial_kwargs = dict(partial_kwargs)
        self.expand_input = expand_input
        self.mapped_into = mapped_into
        self.multiple_outputs: bool = bool(partial_kwargs.get("multiple_outputs", False))
        sources = [source for _, source in expand_input.named_sources()]
        for upstream in upstream_of([*sources, self.partial_kwargs]):
            upstream >> self

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    def unmap(self, map_index: int, ti: XComPuller) -> BaseOperator:
        """The concrete operator of instance `map_index`, in this task's DAG and with its settings."""
        mapped = self.expand_input.arguments(map_index, ti, self.task_id)
        kwargs = resolve_args(self.partial_kwargs, ti)
        if self.mapped_into is None:
            kwargs.update(mapped)
        else:
            kwargs[self.mapped_into] = {**kwargs.get(self.mapped_into, {}), **mapped}
        try:
            concrete = self.operator_class(self.task_id, dag=None, task_group=None, **kwargs)
        except DagDefinitionError as exc:
            raise TaskFailure(f"mapped task {self.task_id!r}, map_index {map_index}: {exc}") from None
        for name in _RESOLVED_ATTRIBUTES:
            setattr(concrete, name, getattr(self, name))
        return concrete

    def execute(self, context: dict[str, Any]) -> Any:
        """A mapped task runs through its instances (``unmap``), never as itself."""
        raise TaskFailure(f"mapped task {self.task_id!r} cannot run without a map_index")


class OperatorPartial:
    """``SomeOperator.partial(task_id=..., **fixed)``: waits for ``expand`` or ``expand_kwargs``."""

    def __init__(
        self, operator_class: type[BaseOperator], kwargs: Mapping[str, Any], mapped_into: str | None = None
    ) -> None:
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)
        self.mapped_into = mapped_into
        self._task_id = self.kwargs.pop("task_id", None)
        if not isinstance(self._task_id, str):
            raise DagDefinitionError(
                f"{operator_class.__name__}.partial() needs task_id='...' (got {self._task_id!r})"
            )

    def expand(self, **mapped: MapSource) -> MappedOperator:
        """One instance per combination of the items of `mapped` (each a list or a task's value)."""
        if not mapped:
            raise DagDefinitionError(f"task {self._task_id!r}: expand() needs at least one argument to map")
        mapped = {name: _as_source(source) for name, source in mapped.items()}
        for name, source in mapped.items():
            self._check_name(name)
            _check_source(self._task_id, name, source)
        return self._create(ExpandInput(mapped, per_instance_dicts=False))

    def expand_kwargs(self, kwargs_list: MapSource) -> MappedOperator:
        """One instance per dict of `kwargs_list` (a list of dicts, or a task's value that is one)."""
        kwargs_list = _as_source(kwargs_list)
        _check_source(self._task_id, "expand_kwargs", kwargs_list)
        if not isinstance(kwargs_list, XComArg):
            for item in kwargs_list:
                if not isinstance(item, Mapping):
                    raise DagDefinitionError(
                        f"task {self._task_id!r}: expand_kwargs() needs a list of dicts, got an item {item!r}"
                    )
                for name in item:
                    self._check_name(str(name))
        return self._create(ExpandInput(kwargs_list, per_instance_dicts=True))

    def _create(self, expand_input: ExpandInput) -> MappedOperator:
        base = {k: v for k, v in self.kwargs.items() if k in BASE_ARGUMENTS}
        own = {k: v for k, v in self.kwargs.items() if k not in BASE_ARGUMENTS}
        return MappedOperator(
            str(self._task_id),
            operator_class=self.operator_class,
            partial_kwargs=own,
            expand_input=expand_input,
            mapped_into=self.mapped_into,
            **base,
        )

    def _check_name(self, name: str) -> None:
        if name in self.kwargs or name in BASE_ARGUMENTS:
            raise DagDefinitionError(
                f"task {self._task_id!r}: {name!r} cannot be mapped (it is given to partial(), or it is a "
                "task setting such as retries or pool); map only the operator's own arguments"
            )
        if self.mapped_into is None and name not in _init_parameters(self.operator_class):
            raise DagDefinitionError(
                f"task {self._task_id!r}: {self.operator_class.__name__} has no argument {name!r} to map"
            )


def _as_source(source: object) -> Any:
    """A task given as the thing to map over stands for its return value (a ``@task`` call's result)."""
    return XComArg(source) if isinstance(source, BaseOperator) else source


def _check_source(task_id: str, name: str, source: object) -> None:
    if isinstance(source, XComArg):
        return
    if not isinstance(source, (list, tuple)):
        raise DagDefinitionError(
            f"task {task_id!r}: {name!r} must be a list (or another task's value) to map over, "
            f"got {type(source).__name__}"
        )


def _init_parameters(operator_class: type[BaseOperator]) -> set[str]:
    names: set[str] = set()
    for klass in operator_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names - {"self", "args", "kwargs", "unknown"}
