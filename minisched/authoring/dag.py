"""The DAG: a named graph of tasks with a schedule, built by importing a DAG file.

Every DAG created while a ``collect_dags()`` block is active is appended to its list,
which is how the DAG-folder loader finds the DAGs of a file (module level, inside ``with``
blocks, or built by factory functions alike).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from minisched.authoring.blocks import Block, OpenBlocks
from minisched.authoring.params import Param, as_params, param_values, params_to_json, validate_conf
from minisched.authoring.schedules import (
    DataInterval,
    Schedule,
    earlier_instant,
    make_schedule,
    parse_timezone,
    timezone_name,
)
from minisched.exceptions import DagDefinitionError, ParamValidationError
from minisched.inputs import MAX_ID_LENGTH, MAX_INT, MIN_INT

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator
    from minisched.authoring.task_group import TaskGroup

_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")
_AUTHORING_DIR = os.path.dirname(os.path.abspath(__file__))

# Both are ContextVars so concurrent loaders (threads) never see each other's DAGs.
_open_dags: OpenBlocks[DAG] = OpenBlocks("minisched_dag_stack")
_collector: ContextVar[list[DAG] | None] = ContextVar("minisched_dag_collector", default=None)


@contextmanager
def collect_dags() -> Iterator[list[DAG]]:
    """Collect every DAG object created inside the block, in creation order.

    The loader wraps the import of one DAG file in this block; nesting is allowed (the
    inner block gets the DAGs created inside it, the outer one does not).
    """
    dags: list[DAG] = []
    token = _collector.set(dags)
    try:
        yield dags
    finally:
        _collector.reset(token)


def current_dag() -> DAG | None:
    """The DAG of the innermost active ``with DAG(...)`` block, if any."""
    return _open_dags.innermost()


def validate_id(kind: str, value: object) -> str:
    """Check a dag_id or task_id: the scheduler uses ids in run ids, log folder names and URLs."""
    if not isinstance(value, str):
        raise DagDefinitionError(f"{kind} must be a string, got {type(value).__name__} {value!r}")
    if not value or len(value) > MAX_ID_LENGTH or not _ID_PATTERN.match(value):
        raise DagDefinitionError(
            f"invalid {kind} {value!r}: use 1 to {MAX_ID_LENGTH} letters, digits, '_', '-' or '.'"
        )
    return value


class DAG(Block):
    """A workflow: tasks, their dependencies and when runs of them are created.

    Use it as a context manager so operators created inside attach to it::

        with DAG("etl", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
            extract >> load
    """

    _open = _open_dags

    def __init__(  # noqa: PLR0917 -- Airflow's DAG() takes these positionally too
        self,
        dag_id: str,
        schedule: str | timedelta | Schedule | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool = False,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        default_args: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        description: str | None = None,
        timezone: str | tzinfo | None = None,
        dagrun_timeout: timedelta | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        schedule_interval: str | timedelta | None = None,
        doc_md: str | None = None,
        is_paused_upon_creation: bool | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: type | None = None,
        user_defined_macros: Mapping[str, Any] | None = None,
        user_defined_filters: Mapping[str, Callable[..., Any]] | None = None,
        render_template_as_native_obj: bool = False,
        jinja_environment_kwargs: Mapping[str, Any] | None = None,
        on_success_callback: DagCallbacks = None,
        on_failure_callback: DagCallbacks = None,
    ) -> None:
        self.dag_id = validate_id("dag_id", dag_id)
        self.default_args: dict[str, Any] = _mapping(dag_id, "default_args", default_args)
        self.start_date, self.end_date = _dates(dag_id, start_date, end_date, self.default_args, timezone)
        self.timezone, self.timetable = _timetable(
            dag_id, _pick_schedule(dag_id, schedule, schedule_interval), timezone, self.start_date
        )
        self.catchup = _bool(dag_id, "catchup", catchup)
        self.max_active_runs = _positive_int(dag_id, "max_active_runs", max_active_runs)
        self.max_active_tasks = _positive_int(dag_id, "max_active_tasks", max_active_tasks)
        self.tags = _tags(dag_id, tags)
        self.description = description
        self.doc_md = doc_md
        self.dagrun_timeout = _optional_timedelta(dag_id, "dagrun_timeout", dagrun_timeout)
        self.param_specs: dict[str, Param] = as_params(dag_id, _mapping(dag_id, "params", params))
        _check_params_of_scheduled_dag(dag_id, self.param_specs, self.timetable.summary)
        self.is_paused_upon_creation = is_paused_upon_creation
        self.template_searchpath = _searchpath(dag_id, template_searchpath)
        self.template_undefined = template_undefined
        self.user_defined_macros = _mapping(dag_id, "user_defined_macros", user_defined_macros)
        self.user_defined_filters = _mapping(dag_id, "user_defined_filters", user_defined_filters)
        self.render_template_as_native_obj = _bool(
            dag_id, "render_template_as_native_obj", render_template_as_native_obj
        )
        self.jinja_environment_kwargs = _mapping(dag_id, "jinja_environment_kwargs", jinja_environment_kwargs)
        #: DAG-level callbacks by kind ("success", "failure"): called once when a run ends, by the
        #: callback process (see minisched/scheduler/executors/dag_callbacks.py), never the scheduler.
        self.callbacks: dict[str, list[Callable[[dict[str, Any]], Any]]] = {
            "success": _dag_callbacks(dag_id, "on_success_callback", on_success_callback),
            "failure": _dag_callbacks(dag_id, "on_failure_callback", on_failure_callback),
        }
        self.fileloc = _caller_file()
        self.task_dict: dict[str, BaseOperator] = {}
        self.task_group_dict: dict[str, TaskGroup] = {}
        self._weights: dict[str, int] | None = None
        collector = _collector.get()
        if collector is not None:
            collector.append(self)

    # -- tasks -------------------------------------------------------------------------

    @property
    def schedule(self) -> str | None:
        """The schedule text as stored in the ``dag`` table ("@daily", "0 * * * *", "1:00:00")."""
        return self.timetable.summary

    @property
    def params(self) -> dict[str, Any]:
        """The param values a run gets before its conf is applied (Airflow's ``dag.params``)."""
        return param_values(self.param_specs)

    @property
    def timezone_name(self) -> str:
        return timezone_name(self.timezone)

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks without upstream tasks: the ones a new run starts with."""
        return [t for t in self.task_dict.values() if not t._upstream]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks without downstream tasks: a run is finished when these are."""
        return [t for t in self.task_dict.values() if not t._downstream]

    @property
    def owner(self) -> str:
        return ", ".join(sorted({t.owner for t in self.task_dict.values()}))

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise KeyError(f"task {task_id!r} not found in DAG {self.dag_id!r}") from None

    def add_task(self, task: BaseOperator) -> None:
        """Attach ``task``; called by operators, rarely needed in DAG files."""
        if task.task_id in self.task_dict:
            if self.task_dict[task.task_id] is task:
                return
            raise DagDefinitionError(
                f"duplicate task_id {task.task_id!r} in DAG {self.dag_id!r}; task ids must be "
                "unique within a DAG, rename one of the tasks"
            )
        if task.task_id in self.task_group_dict:
            raise DagDefinitionError(
                f"task_id {task.task_id!r} is already a task group's id in DAG {self.dag_id!r}; rename one"
            )
        self.task_dict[task.task_id] = task
        self._weights = None

    def add_task_group(self, group: TaskGroup) -> None:
        """Register a task group; its id must not be another group's or a task's."""
        if group.group_id in self.task_group_dict or group.group_id in self.task_dict:
            raise DagDefinitionError(
                f"duplicate task group id {group.group_id!r} in DAG {self.dag_id!r}; rename one of them"
            )
        self.task_group_dict[group.group_id] = group

    def topological_order(self) -> list[BaseOperator]:
        """Tasks ordered so every task comes after all its upstream tasks (stable)."""
        return [self.task_dict[task_id] for task_id in topological_sort(self._graph())]

    def _graph(self) -> dict[str, list[str]]:
        return {tid: list(t._downstream) for tid, t in self.task_dict.items()}

    def _add_edge(self, upstream: BaseOperator, downstream: BaseOperator) -> None:
        """Add ``upstream >> downstream``, refusing an edge that closes a cycle."""
        if downstream.task_id in upstream._downstream:
            return
        path = _path(self.task_dict, downstream.task_id, upstream.task_id)
        if path is not None:
            cycle = " -> ".join([upstream.task_id, *path])
            raise DagDefinitionError(
                f"cycle in DAG {self.dag_id!r}: {cycle}; remove one of these dependencies"
            )
        upstream._downstream[downstream.task_id] = None
        downstream._upstream[upstream.task_id] = None
        self._weights = None

    def priority_weight_total(self, task_id: str) -> int:
        """A task's effective priority, summing weights along the graph per its weight_rule."""
        if self._weights is None:
            self._weights = compute_priority_weights(self)
        return self._weights[task_id]

    # -- schedule ----------------------------------------------------------------------

    def next_dagrun_info(
        self, last_interval: DataInterval | None, *, now: datetime | None = None
    ) -> DataInterval | None:
        """The interval of the next scheduled run after ``last_interval`` (see Schedule)."""
        return self.timetable.next_dagrun_info(
            last_interval,
            start_date=self.start_date,
            end_date=self.end_date,
            catchup=self.catchup,
            now=now,
        )

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"


def topological_sort(downstream: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm over ``{node: downstream nodes}``, stable in insertion order."""
    indegree = dict.fromkeys(downstream, 0)
    for children in downstream.values():
        for child in children:
            indegree[child] += 1
    ready = [node for node, degree in indegree.items() if degree == 0]
    order: list[str] = []
    while ready:
        next_ready: list[str] = []
        for node in ready:
            order.append(node)
            for child in downstream[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    next_ready.append(child)
        ready = next_ready
    return order


def compute_priority_weights(dag: DAG) -> dict[str, int]:
    """Each task's priority_weight_total: Airflow's downstream/upstream/absolute rules.

    Related-task sets are bitsets (Python ints) and weights are summed per distinct weight
    with popcounts, so a 1,000-task chain costs milliseconds, not a quadratic walk.
    """
    tasks = dag.task_dict
    order = topological_sort(dag._graph())
    bit = {task_id: 1 << i for i, task_id in enumerate(order)}
    masks: dict[int, int] = {}
    for task_id, task in tasks.items():
        masks[task.priority_weight] = masks.get(task.priority_weight, 0) | bit[task_id]
    rules = {t.weight_rule for t in tasks.values()}
    related: dict[str, int] = dict.fromkeys(tasks, 0)
    if "downstream" in rules:
        descendants = _closures(reversed(order), lambda t: tasks[t]._downstream, bit)
        related.update({t: descendants[t] for t in tasks if tasks[t].weight_rule == "downstream"})
    if "upstream" in rules:
        ancestors = _closures(order, lambda t: tasks[t]._upstream, bit)
        related.update({t: ancestors[t] for t in tasks if tasks[t].weight_rule == "upstream"})
    # Clamped, as Airflow does, so that a sum of large weights still fits the INTEGER column.
    return {
        task_id: min(
            MAX_INT,
            max(
                MIN_INT,
                task.priority_weight
                + sum(weight * (related[task_id] & mask).bit_count() for weight, mask in masks.items()),
            ),
        )
        for task_id, task in tasks.items()
    }


def _closures(
    order: Iterable[str], direct: Callable[[str], Iterable[str]], bit: Mapping[str, int]
) -> dict[str, int]:
    """Transitive closure bitsets, visiting nodes so that every ``direct`` node comes first."""
    closure: dict[str, int] = {}
    for node in order:
        bits = 0
        for other in direct(node):
            bits |= closure[other] | bit[other]
        closure[node] = bits
    return closure


def _path(tasks: Mapping[str, BaseOperator], source: str, target: str) -> list[str] | None:
    """A downstream path from ``source`` to ``target`` (both included), if one exists.

    Searches forward from ``source`` and backward from ``target`` in turns and stops when
    either side runs out, so adding an edge at either end of a long chain is cheap.
    """
    if source == target:
        return [source]
    forward: dict[str, str | None] = {source: None}
    backward: dict[str, str | None] = {target: None}
    forward_todo, backward_todo = [source], [target]
    while forward_todo and backward_todo:
        node = forward_todo.pop()
        for child in tasks[node]._downstream:
            if child not in forward:
                forward[child] = node
                if child in backward:
                    return _join(forward, backward, child)
                forward_todo.append(child)
        node = backward_todo.pop()
        for parent in tasks[node]._upstream:
            if parent not in backward:
                backward[parent] = node
                if parent in forward:
                    return _join(forward, backward, parent)
                backward_todo.append(parent)
    return None


def _join(forward: Mapping[str, str | None], backward: Mapping[str, str | None], meet: str) -> list[str]:
    head: list[str] = []
    step: str | None = meet
    while step is not None:
        head.append(step)
        step = forward[step]
    tail: list[str] = []
    step = backward[meet]
    while step is not None:
        tail.append(step)
        step = backward[step]
    return head[::-1] + tail


def _caller_file() -> str:
    """The file of the first frame outside minisched.authoring (the DAG file, usually)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.dirname(frame.f_code.co_filename) == _AUTHORING_DIR:
        frame = frame.f_back
    return frame.f_code.co_filename


def _pick_schedule(
    dag_id: str, schedule: str | timedelta | Schedule | None, schedule_interval: str | timedelta | None
) -> str | timedelta | Schedule | None:
    """Accept Airflow 2's older ``schedule_interval=`` spelling, but not both at once."""
    if schedule_interval is None:
        return schedule
    if schedule is not None:
        raise DagDefinitionError(f"DAG {dag_id!r}: pass either schedule= or schedule_interval=, not both")
    return schedule_interval


def _dates(
    dag_id: str,
    start_date: object,
    end_date: object,
    default_args: Mapping[str, Any],
    tz: str | tzinfo | None,
) -> tuple[datetime | None, datetime | None]:
    """start/end dates (from default_args if not given, as in Airflow), aware and ordered.

    A naive date is read in the DAG's ``timezone=``, else in the default timezone (Airflow's rule).
    """
    start = _aware_date(dag_id, "start_date", start_date or default_args.get("start_date"), tz)
    end = _aware_date(dag_id, "end_date", end_date or default_args.get("end_date"), tz)
    if start and end and end < start:
        raise DagDefinitionError(
            f"DAG {dag_id!r}: end_date {end.isoformat()} is before start_date {start.isoformat()}"
        )
    return start, end


def _timetable(
    dag_id: str,
    schedule: str | timedelta | Schedule | None,
    tz: str | tzinfo | None,
    start_date: datetime | None,
) -> tuple[tzinfo, Schedule]:
    """The DAG's timezone (``timezone=``, else start_date's) and its schedule in that zone."""
    try:
        zone = parse_timezone(tz if tz is not None else (start_date.tzinfo if start_date else None))
        timetable = make_schedule(schedule, zone)
    except DagDefinitionError as exc:
        raise DagDefinitionError(f"DAG {dag_id!r}: {exc}") from None
    if timetable.summary is not None and start_date is None:
        raise DagDefinitionError(
            f"DAG {dag_id!r} has schedule {timetable.summary!r} but no start_date; "
            "pass start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)"
        )
    return zone, timetable


def _aware_date(dag_id: str, name: str, value: object, tz: str | tzinfo | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        kind = "a date" if isinstance(value, date) else type(value).__name__
        raise DagDefinitionError(
            f"DAG {dag_id!r}: {name} must be a datetime, got {kind} {value!r}; "
            f"use {name}=datetime(2024, 1, 1, tzinfo=timezone.utc)"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        try:
            zone = parse_timezone(tz) if tz is not None else default_timezone()
        except DagDefinitionError as exc:
            raise DagDefinitionError(f"DAG {dag_id!r}: {exc}") from None
        # A local time that happens twice, or never, is read as its earlier instant, as Airflow does.
        return earlier_instant(value, zone).astimezone(zone)
    return value


def _check_params_of_scheduled_dag(dag_id: str, params: Mapping[str, Param], schedule: str | None) -> None:
    """Scheduled runs use the defaults, so they must all exist and validate (Airflow's rule)."""
    if schedule is None:
        return
    try:
        validate_conf(params_to_json(params), None)
    except ParamValidationError as exc:
        raise DagDefinitionError(
            f"DAG {dag_id!r} has schedule {schedule!r} but its params do not validate without a "
            f"conf ({exc}); give every param a valid default or use schedule=None"
        ) from None


DagCallbacks = Callable[[dict[str, Any]], Any] | Sequence[Callable[[dict[str, Any]], Any]] | None


def _dag_callbacks(dag_id: str, name: str, value: object) -> list[Callable[[dict[str, Any]], Any]]:
    if value is None:
        return []
    items: list[object] = list(value) if isinstance(value, (list, tuple)) else [value]
    functions: list[Callable[[dict[str, Any]], Any]] = [item for item in items if callable(item)]
    if len(functions) != len(items):
        raise DagDefinitionError(
            f"DAG {dag_id!r}: {name} must be a function taking the context, or a list of them; got {value!r}"
        )
    return functions


def default_timezone() -> tzinfo:
    """The zone naive DAG datetimes are read in (``MINISCHED_DEFAULT_TIMEZONE``), as in Airflow."""
    from minisched.settings import get_settings

    return parse_timezone(get_settings().default_timezone)


def _mapping(dag_id: str, name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DagDefinitionError(f"DAG {dag_id!r}: {name} must be a dict, got {type(value).__name__}")
    return dict(value)


def _bool(dag_id: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise DagDefinitionError(f"DAG {dag_id!r}: {name} must be True or False, got {value!r}")
    return value


def _positive_int(dag_id: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        raise DagDefinitionError(f"DAG {dag_id!r}: {name} must be an int from 1 to {MAX_INT}, got {value!r}")
    return value


def _optional_timedelta(dag_id: str, name: str, value: object) -> timedelta | None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise DagDefinitionError(
            f"DAG {dag_id!r}: {name} must be a positive timedelta or None, got {value!r}"
        )
    return value


def _searchpath(dag_id: str, value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(path, str) for path in paths):
        raise DagDefinitionError(f"DAG {dag_id!r}: template_searchpath must be a path or a list of paths")
    return paths


def _tags(dag_id: str, tags: Iterable[str] | None) -> list[str]:
    if tags is None:
        return []
    values = [tags] if isinstance(tags, str) else list(tags)
    if isinstance(tags, str) or not all(isinstance(tag, str) and tag for tag in values):
        raise DagDefinitionError(f"DAG {dag_id!r}: tags must be a list of non-empty strings, got {tags!r}")
    return values
