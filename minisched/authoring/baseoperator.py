"""BaseOperator: one task of a DAG, its retry/pool/priority settings and its dependencies."""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, Union

from minisched.authoring.dag import DAG, current_dag, validate_id
from minisched.authoring.task_group import TaskGroup, current_task_group
from minisched.authoring.trigger_rules import VALID_TRIGGER_RULES, TriggerRule
from minisched.exceptions import DagDefinitionError
from minisched.inputs import MAX_INT, MIN_INT

if TYPE_CHECKING:
    from minisched.authoring.mapping import OperatorPartial
    from minisched.authoring.xcom import XComArg


class ArgNotSet(enum.Enum):
    """Marks an argument the caller did not pass, so ``default_args`` may supply it."""

    NOTSET = enum.auto()


NOTSET: Final = ArgNotSet.NOTSET
NotSet = Literal[ArgNotSet.NOTSET]

WEIGHT_RULES: tuple[str, ...] = ("downstream", "upstream", "absolute")
# Airflow's [core] max_task_retry_delay default: exponential backoff never waits longer.
MAX_RETRY_DELAY = timedelta(seconds=86400)

TASK_DEFAULTS: Mapping[str, Any] = {
    "owner": "minisched",
    "retries": 0,
    "retry_delay": timedelta(seconds=300),
    "retry_exponential_backoff": False,
    "max_retry_delay": None,
    "execution_timeout": None,
    "pool": "default_pool",
    "pool_slots": 1,
    "queue": None,
    "priority_weight": 1,
    "weight_rule": "downstream",
    "trigger_rule": TriggerRule.ALL_SUCCESS.value,
    "depends_on_past": False,
    "on_execute_callback": None,
    "on_success_callback": None,
    "on_failure_callback": None,
    "on_retry_callback": None,
    "on_skipped_callback": None,
    "do_xcom_push": True,
}
CALLBACK_KINDS: tuple[str, ...] = ("execute", "success", "failure", "retry", "skipped")

_T = TypeVar("_T")
Callbacks = Callable[[dict[str, Any]], Any] | Sequence[Callable[[dict[str, Any]], Any]] | None
Relatable = Union["BaseOperator", TaskGroup]
Relatives = Union["BaseOperator", TaskGroup, Sequence[Union["BaseOperator", TaskGroup]]]


class BaseOperator:
    """One task. Subclasses implement ``execute(context)``; its return value is stored as XCom
    ``return_value`` unless ``do_xcom_push=False``.

    Any argument left out comes from the DAG's ``default_args`` (then the operator's own
    ``default_args``), else from the defaults above, as in Airflow.
    """

    #: Attributes rendered with Jinja just before a try runs (see ``authoring.templating``).
    template_fields: Sequence[str] = ()
    #: A templated string ending in one of these names a template file (relative to the DAG file).
    template_ext: tuple[str, ...] = ()

    def __init__(
        self,
        task_id: str,
        *,
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        default_args: Mapping[str, Any] | None = None,
        owner: str | NotSet = NOTSET,
        retries: int | NotSet | None = NOTSET,
        retry_delay: timedelta | float | NotSet = NOTSET,
        retry_exponential_backoff: bool | NotSet = NOTSET,
        max_retry_delay: timedelta | float | NotSet | None = NOTSET,
        execution_timeout: timedelta | float | NotSet | None = NOTSET,
        pool: str | NotSet = NOTSET,
        pool_slots: int | NotSet = NOTSET,
        queue: str | NotSet | None = NOTSET,
        priority_weight: int | NotSet = NOTSET,
        weight_rule: str | NotSet = NOTSET,
        trigger_rule: str | NotSet = NOTSET,
        depends_on_past: bool | NotSet = NOTSET,
        on_execute_callback: Callbacks | NotSet = NOTSET,
        on_success_callback: Callbacks | NotSet = NOTSET,
        on_failure_callback: Callbacks | NotSet = NOTSET,
        on_retry_callback: Callbacks | NotSet = NOTSET,
        on_skipped_callback: Callbacks | NotSet = NOTSET,
        do_xcom_push: bool | NotSet = NOTSET,
        doc: str | None = None,
        doc_md: str | None = None,
        **unknown: Any,
    ) -> None:
        validate_id("task_id", task_id)
        if unknown:
            raise DagDefinitionError(
                f"task {task_id!r}: {type(self).__name__} got unknown argument(s) "
                f"{', '.join(sorted(unknown))}; valid task arguments are {', '.join(TASK_DEFAULTS)}"
            )
        group = task_group if task_group is not None else current_task_group(dag)
        dag = _resolve_dag(task_id, dag if dag is not None or group is None else group.dag)
        self.task_group: TaskGroup | None = group
        self.task_id = validate_id("task_id", group.child_id(task_id) if group else task_id)
        task_id = self.task_id
        defaults = {
            **(dag.default_args if dag else {}),
            **(group.default_args if group else {}),
            **(default_args or {}),
        }

        def arg(name: str, explicit: _T | NotSet) -> Any:
            return explicit if explicit is not NOTSET else defaults.get(name, TASK_DEFAULTS[name])

        check = _Checker(task_id)
        self.owner: str = check.text("owner", arg("owner", owner))
        self.retries: int = check.retries(arg("retries", retries))
        self.retry_delay: timedelta = check.duration("retry_delay", arg("retry_delay", retry_delay))
        self.retry_exponential_backoff: bool = check.flag(
            "retry_exponential_backoff", arg("retry_exponential_backoff", retry_exponential_backoff)
        )
        self.max_retry_delay: timedelta | None = check.optional_duration(
            "max_retry_delay", arg("max_retry_delay", max_retry_delay)
        )
        self.execution_timeout: timedelta | None = check.optional_duration(
            "execution_timeout", arg("execution_timeout", execution_timeout), positive=True
        )
        self.pool: str = check.text("pool", arg("pool", pool))
        self.pool_slots: int = check.pool_slots(arg("pool_slots", pool_slots))
        # None: the executor's default queue (MINISCHED_DEFAULT_QUEUE); only the Celery executor reads it.
        queue_name = arg("queue", queue)
        self.queue: str | None = None if queue_name is None else check.text("queue", queue_name)
        self.priority_weight: int = check.integer("priority_weight", arg("priority_weight", priority_weight))
        self.weight_rule: str = check.choice("weight_rule", arg("weight_rule", weight_rule), WEIGHT_RULES)
        self.trigger_rule: TriggerRule = TriggerRule(
            check.choice("trigger_rule", arg("trigger_rule", trigger_rule), VALID_TRIGGER_RULES)
        )
        self.depends_on_past: bool = check.flag("depends_on_past", arg("depends_on_past", depends_on_past))
        given = {
            "execute": on_execute_callback,
            "success": on_success_callback,
            "failure": on_failure_callback,
            "retry": on_retry_callback,
            "skipped": on_skipped_callback,
        }
        #: kind ("execute", "success", ...) -> the callables the worker calls with the context.
        self.callbacks: dict[str, list[Callable[[dict[str, Any]], Any]]] = {
            kind: check.callbacks(f"on_{kind}_callback", arg(f"on_{kind}_callback", value))
            for kind, value in given.items()
        }
        #: Whether the value `execute` returns is stored as XCom `return_value`.
        self.do_xcom_push: bool = check.flag("do_xcom_push", arg("do_xcom_push", do_xcom_push))
        self.doc: str | None = doc if doc is not None else doc_md
        self._upstream: dict[str, None] = {}  # dicts as ordered sets: stable iteration
        self._downstream: dict[str, None] = {}
        self._dag: DAG | None = None
        if dag is not None:
            self.dag = dag
        if group is not None:
            group.add(self)

    # -- DAG membership ----------------------------------------------------------------

    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        if not isinstance(dag, DAG):
            raise DagDefinitionError(f"task {self.task_id!r}: dag must be a DAG, got {dag!r}")
        if self._dag is not None and self._dag is not dag:
            raise DagDefinitionError(
                f"task {self.task_id!r} already belongs to DAG {self._dag.dag_id!r}; "
                f"it cannot also be added to DAG {dag.dag_id!r}"
            )
        dag.add_task(self)
        self._dag = dag

    @property
    def output(self) -> XComArg:
        """This task's return value, for another task's arguments (Airflow's ``task.output``)."""
        from minisched.authoring.xcom import XComArg

        return XComArg(self)

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Start a mapped task: ``BashOperator.partial(task_id="t").expand(bash_command=[...])``."""
        from minisched.authoring.mapping import OperatorPartial

        return OperatorPartial(cls, kwargs)

    @property
    def task_type(self) -> str:
        """The operator's name as the scheduler, the CLI and the UI show it."""
        return type(self).__name__

    def has_dag(self) -> bool:
        return self._dag is not None

    @property
    def dag_id(self) -> str | None:
        return self._dag.dag_id if self._dag else None

    # -- dependencies ------------------------------------------------------------------

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self._upstream)

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._downstream)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        tasks = self._require_dag().task_dict
        return [tasks[t] for t in self._upstream]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        tasks = self._require_dag().task_dict
        return [tasks[t] for t in self._downstream]

    def set_downstream(self, other: Relatives) -> None:
        """Make ``other`` (a task, a task group or a list of them) run after this task."""
        self._relate(other, upstream=False)

    def set_upstream(self, other: Relatives) -> None:
        """Make ``other`` (a task, a task group or a list of them) run before this task."""
        self._relate(other, upstream=True)

    def __rshift__(self, other: _T) -> _T:
        """``self >> other``: other runs after self; returns other so chains read left to right."""
        self.set_downstream(other)  # type: ignore[arg-type]
        return other

    def __lshift__(self, other: _T) -> _T:
        """``self << other``: other runs before self."""
        self.set_upstream(other)  # type: ignore[arg-type]
        return other

    def __rrshift__(self, other: Sequence[BaseOperator]) -> BaseOperator:
        """``[a, b] >> self``."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Sequence[BaseOperator]) -> BaseOperator:
        """``[a, b] << self``."""
        self.set_downstream(other)
        return self

    def _relate(self, other: object, *, upstream: bool) -> None:
        others = _as_tasks(other, self.task_id, upstream=upstream)
        dag = _common_dag(self, others)
        for task in (self, *others):
            if task.dag is None:
                task.dag = dag
        for task in others:
            if upstream:
                dag._add_edge(task, self)
            else:
                dag._add_edge(self, task)

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        """Every task downstream of this one (upstream with ``upstream=True``), however far."""
        tasks = self._require_dag().task_dict
        found: set[str] = set()
        todo = list(self._upstream if upstream else self._downstream)
        while todo:
            task_id = todo.pop()
            if task_id not in found:
                found.add(task_id)
                relative = tasks[task_id]
                todo.extend(relative._upstream if upstream else relative._downstream)
        return found

    def _require_dag(self) -> DAG:
        if self._dag is None:
            raise DagDefinitionError(
                f"task {self.task_id!r} is not in a DAG; create it inside `with DAG(...)` or pass dag="
            )
        return self._dag

    # -- scheduling helpers ------------------------------------------------------------

    @property
    def priority_weight_total(self) -> int:
        """Priority used to order queued tasks, per ``weight_rule`` (Airflow's semantics)."""
        if self._dag is None:
            return self.priority_weight
        return self._dag.priority_weight_total(self.task_id)

    def next_retry_delay(self, try_number: int, logical_date: datetime | None = None) -> timedelta:
        """How long to wait after failed try ``try_number`` before the next try."""
        return compute_retry_delay(
            retry_delay=self.retry_delay,
            try_number=try_number,
            exponential_backoff=self.retry_exponential_backoff,
            max_retry_delay=self.max_retry_delay,
            jitter_key=retry_jitter_key(self.dag_id or "", self.task_id, logical_date, try_number),
        )

    # -- execution ---------------------------------------------------------------------

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the task's work. Raise ``SkipTask`` to skip, any other exception to fail."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def on_kill(self) -> None:
        """Stop work started outside this process (a worker calls it when told to stop)."""

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"


def compute_retry_delay(
    *,
    retry_delay: timedelta,
    try_number: int,
    exponential_backoff: bool,
    max_retry_delay: timedelta | None,
    jitter_key: str | None = None,
) -> timedelta:
    """Airflow 2.10's ``TaskInstance.next_retry_datetime`` delay, after try ``try_number``.

    With exponential backoff the delay is ``retry_delay * 2**(try_number - 1)`` rounded up
    to whole seconds (at least 1 s), capped at 24 h and then at ``max_retry_delay``.
    Airflow adds a deterministic jitter of up to 100 % from a hash of the task instance;
    that happens only when ``jitter_key`` is given (see ``retry_jitter_key``).
    """
    if not exponential_backoff:
        return retry_delay
    exponent = min(max(try_number, 1) - 1, 64)  # beyond 2**64 the 24 h cap applies anyway
    min_backoff = max(math.ceil(retry_delay.total_seconds() * (2**exponent)), 1)
    seconds = min_backoff
    if jitter_key is not None:
        import hashlib

        digest = int(hashlib.sha1(jitter_key.encode()).hexdigest(), 16)
        seconds = min_backoff + digest % min_backoff
    delay = timedelta(seconds=min(seconds, MAX_RETRY_DELAY.total_seconds()))
    return min(delay, max_retry_delay) if max_retry_delay else delay


def retry_jitter_key(dag_id: str, task_id: str, logical_date: datetime | None, try_number: int) -> str | None:
    """The text Airflow hashes for the retry jitter; None (no jitter) without a logical date."""
    if logical_date is None:
        return None
    return f"{dag_id}#{task_id}#{logical_date.isoformat()}#{try_number}"


def chain(*tasks: Relatable | Sequence[Relatable]) -> None:
    """``chain(a, [b, c], d)`` is ``a >> [b, c] >> d``; two adjacent lists pair up elementwise.

    Tasks and task groups may be mixed, as in Airflow.
    """
    for left, right in itertools.pairwise(tasks):
        if isinstance(left, (BaseOperator, TaskGroup)):
            left.set_downstream(right)
        elif isinstance(right, (BaseOperator, TaskGroup)):
            right.set_upstream(left)
        else:
            if len(left) != len(right):
                raise DagDefinitionError(
                    f"chain() got adjacent lists of different lengths {len(left)} and {len(right)}"
                )
            for up, down in zip(left, right, strict=True):
                up.set_downstream(down)


def cross_downstream(from_tasks: Sequence[Relatable], to_tasks: Relatable | Sequence[Relatable]) -> None:
    """Every task of ``from_tasks`` runs before every task of ``to_tasks``."""
    for task in from_tasks:
        task.set_downstream(to_tasks)


class _Checker:
    """Validates task arguments with messages that name the task and the argument."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    def fail(self, name: str, expected: str, value: object) -> DagDefinitionError:
        return DagDefinitionError(f"task {self.task_id!r}: {name} must be {expected}, got {value!r}")

    def text(self, name: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(name, "a non-empty string", value)
        return value

    def flag(self, name: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(name, "True or False", value)
        return value

    def integer(self, name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_INT <= value <= MAX_INT:
            raise self.fail(name, f"an int from {MIN_INT} to {MAX_INT}", value)
        return value

    def retries(self, value: object) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_INT:
            raise self.fail("retries", f"an int from 0 to {MAX_INT - 1}", value)
        return value

    def pool_slots(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
            raise self.fail("pool_slots", f"an int from 1 to {MAX_INT}", value)
        return value

    def duration(self, name: str, value: object) -> timedelta:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = timedelta(seconds=value)
        if not isinstance(value, timedelta) or value < timedelta(0):
            raise self.fail(name, "a timedelta >= 0 (or seconds)", value)
        return value

    def optional_duration(self, name: str, value: object, *, positive: bool = False) -> timedelta | None:
        if value is None:
            return None
        duration = self.duration(name, value)
        if positive and duration == timedelta(0):
            raise self.fail(name, "a positive timedelta or None", value)
        return duration

    def callbacks(self, name: str, value: object) -> list[Callable[[dict[str, Any]], Any]]:
        if value is None:
            return []
        items: list[object] = list(value) if isinstance(value, (list, tuple)) else [value]
        functions: list[Callable[[dict[str, Any]], Any]] = [item for item in items if callable(item)]
        if len(functions) != len(items):
            raise self.fail(name, "a function taking the context, or a list of them", value)
        return functions

    def choice(self, name: str, value: object, choices: Sequence[str]) -> str:
        if value not in choices:
            raise DagDefinitionError(
                f"task {self.task_id!r}: unknown {name} {value!r}; valid values are {', '.join(choices)}"
            )
        return str(value)


def _resolve_dag(task_id: str, dag: object) -> DAG | None:
    if dag is None:
        return current_dag()
    if not isinstance(dag, DAG):
        raise DagDefinitionError(f"task {task_id!r}: dag must be a DAG, got {dag!r}")
    return dag


def _as_tasks(other: object, task_id: str, *, upstream: bool) -> list[BaseOperator]:
    """The tasks ``other`` stands for; a group upstream of a task means its leaves, downstream its roots."""
    items = list(other) if isinstance(other, (list, tuple, set, frozenset)) else [other]
    tasks: list[BaseOperator] = []
    for item in items:
        if isinstance(item, TaskGroup):
            tasks.extend(item.leaves if upstream else item.roots)
        elif isinstance(item, BaseOperator):
            tasks.append(item)
        else:
            raise DagDefinitionError(
                f"task {task_id!r}: dependencies must be tasks, task groups or lists of them, got {item!r}"
            )
    return tasks


def _common_dag(task: BaseOperator, others: Iterable[BaseOperator]) -> DAG:
    tasks = [task, *others]
    dags = {id(t.dag): t.dag for t in tasks if t.dag is not None}
    if len(dags) > 1:
        names = sorted(d.dag_id for d in dags.values())
        raise DagDefinitionError(
            f"cannot set dependencies between tasks of different DAGs {names}: {[t.task_id for t in tasks]}"
        )
    if not dags:
        raise DagDefinitionError(
            f"tasks {[t.task_id for t in tasks]} are not in a DAG; create them inside "
            "`with DAG(...)` or pass dag= before setting dependencies"
        )
    return next(iter(dags.values()))
