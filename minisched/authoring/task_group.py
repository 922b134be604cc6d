"""Task groups: named sets of tasks whose ids share a prefix and that wire as one unit.

``with TaskGroup("load"):`` makes every task created inside it ``load.<task_id>`` (unless
``prefix_group_id=False``); ``group >> task`` makes every leaf of the group (a member with no
downstream inside the group) run before ``task``, ``task >> group`` every root after it.
Roots and leaves are taken when the dependency is set, as in Airflow 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from minisched.authoring.blocks import Block, OpenBlocks
from minisched.authoring.dag import DAG, current_dag, validate_id
from minisched.exceptions import DagDefinitionError

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator

P = ParamSpec("P")
R = TypeVar("R")
_T = TypeVar("_T")

_open_groups: OpenBlocks[TaskGroup] = OpenBlocks("minisched_task_group_stack")


def current_task_group(dag: DAG | None = None) -> TaskGroup | None:
    """The innermost active ``with TaskGroup(...)`` block (of ``dag``, when given)."""
    group = _open_groups.innermost()
    if group is not None and dag is not None and group.dag is not dag:
        return None
    return group


class TaskGroup(Block):
    """A group of tasks and groups inside one DAG; see the module docstring."""

    _open = _open_groups

    def __init__(  # noqa: PLR0917 -- Airflow's TaskGroup() takes these positionally too
        self,
        group_id: str,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: Mapping[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
    ) -> None:
        label = validate_id("group_id", group_id)
        parent = parent_group if parent_group is not None else current_task_group(dag)
        owner = dag or (parent.dag if parent else None) or current_dag()
        if owner is None:
            raise DagDefinitionError(
                f"TaskGroup {group_id!r} is not in a DAG; create it inside `with DAG(...)` or pass dag="
            )
        if default_args is not None and not isinstance(default_args, Mapping):
            raise DagDefinitionError(
                f"TaskGroup {group_id!r}: default_args must be a dict, got {default_args!r}"
            )
        self.dag: DAG = owner
        self.parent_group = parent
        self.prefix_group_id = bool(prefix_group_id)
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        inherited = parent.default_args if parent else {}
        self.default_args: dict[str, Any] = {**inherited, **(default_args or {})}
        wanted = parent.child_id(label) if parent else label
        self.group_id = _free_id(owner, wanted) if add_suffix_on_collision else wanted
        prefix = f"{parent.group_id}." if parent and parent.prefix_group_id else ""
        #: The name drawn on the group: its id without the parent's prefix (Airflow's label).
        self.label = self.group_id.removeprefix(prefix)
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        owner.add_task_group(self)
        if parent is not None:
            parent.children[self.group_id] = self

    def child_id(self, label: str) -> str:
        """The id a task or group named ``label`` gets inside this group."""
        return f"{self.group_id}.{label}" if self.prefix_group_id else label

    def add(self, task: BaseOperator) -> None:
        """Record ``task`` as a member; operators call this while they are created."""
        self.children[task.task_id] = task

    # -- members -----------------------------------------------------------------------

    def iter_tasks(self) -> Iterator[BaseOperator]:
        """Every task of this group and of its nested groups, in creation order."""
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child.iter_tasks()
            else:
                yield child

    @property
    def roots(self) -> list[BaseOperator]:
        """Members with no upstream inside the group: what ``x >> group`` runs after ``x``."""
        members = {t.task_id for t in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not members.intersection(t.upstream_task_ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Members with no downstream inside the group: what ``group >> x`` runs before ``x``."""
        members = {t.task_id for t in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not members.intersection(t.downstream_task_ids)]

    def get_roots(self) -> list[BaseOperator]:
        return self.roots

    def get_leaves(self) -> list[BaseOperator]:
        return self.leaves

    # -- dependencies ------------------------------------------------------------------

    def set_downstream(self, other: Any) -> None:
        """Every leaf of this group runs before ``other`` (a task, a group or a list of them)."""
        for leaf in self.leaves:
            leaf.set_downstream(other)

    def set_upstream(self, other: Any) -> None:
        """Every root of this group runs after ``other`` (a task, a group or a list of them)."""
        for root in self.roots:
            root.set_upstream(other)

    def __rshift__(self, other: _T) -> _T:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: _T) -> _T:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Sequence[Any]) -> TaskGroup:
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Sequence[Any]) -> TaskGroup:
        self.set_downstream(other)
        return self

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"


def _free_id(dag: DAG, wanted: str) -> str:
    """``wanted``, or ``wanted__N`` with the first N not taken (Airflow's suffix on collision)."""
    candidate, number = wanted, 1
    while candidate in dag.task_group_dict or candidate in dag.task_dict:
        candidate, number = f"{wanted}__{number}", number + 1
    return candidate


class TaskGroupFunction:
    """A ``@task_group`` function: each call builds a new group and runs the body inside it."""

    def __init__(self, function: Callable[..., Any], group_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.group_kwargs = group_kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        options = {"group_id": self.function.__name__, "add_suffix_on_collision": True, **self.group_kwargs}
        with TaskGroup(**options) as group:
            returned = self.function(*args, **kwargs)
        # Airflow: a returned task (or list) is what later dependencies bind to, else the group.
        return returned if returned is not None else group

    def override(self, **group_kwargs: Any) -> TaskGroupFunction:
        return TaskGroupFunction(self.function, {**self.group_kwargs, **group_kwargs})


@overload
def task_group(python_callable: Callable[P, R], /) -> TaskGroupFunction: ...


@overload
def task_group(
    python_callable: None = None, /, **group_kwargs: Any
) -> Callable[[Callable[P, R]], TaskGroupFunction]: ...


def task_group(
    python_callable: Callable[P, R] | None = None, /, **group_kwargs: Any
) -> TaskGroupFunction | Callable[[Callable[P, R]], TaskGroupFunction]:
    """``@task_group`` or ``@task_group(group_id=..., prefix_group_id=..., default_args=...)``."""
    if python_callable is not None:
        if not callable(python_callable):
            raise DagDefinitionError(f"@task_group must decorate a function, got {python_callable!r}")
        return TaskGroupFunction(python_callable, group_kwargs)

    def decorate(function: Callable[P, R]) -> TaskGroupFunction:
        return TaskGroupFunction(function, group_kwargs)

    return decorate
