"""DAGs as JSON: what the loader stores in ``serialized_dag`` and the scheduler reads back.

The scheduler works from ``SerializedDag`` (dependencies, retries, pools, priorities,
schedule) and never imports DAG files; only the executor does, to run a task.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from minisched.authoring.baseoperator import BaseOperator, compute_retry_delay, retry_jitter_key
from minisched.authoring.dag import DAG, topological_sort
from minisched.authoring.mapping import MappedOperator
from minisched.authoring.params import params_to_json
from minisched.authoring.schedules import DataInterval, Schedule, make_schedule, to_utc
from minisched.authoring.task_group import TaskGroup

FORMAT_VERSION = 1


def serialize_dag(dag: DAG) -> dict[str, Any]:
    """A JSON-safe dict of everything the scheduler needs, in a fixed key order."""
    return {
        "format_version": FORMAT_VERSION,
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "schedule": dag.schedule,
        "timezone": dag.timezone_name,
        "start_date": _iso(dag.start_date),
        "end_date": _iso(dag.end_date),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "dagrun_timeout": _seconds(dag.dagrun_timeout),
        "tags": list(dag.tags),
        "description": dag.description,
        "owner": dag.owner,
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "params": params_to_json(dag.param_specs),
        "task_groups": [_serialize_group(group) for group in dag.task_group_dict.values()],
        "callbacks": sorted(kind for kind, functions in dag.callbacks.items() if functions),
        "tasks": [_serialize_task(dag.task_dict[tid]) for tid in sorted(dag.task_dict)],
    }


def _serialize_group(group: TaskGroup) -> dict[str, Any]:
    parent = group.parent_group
    return {
        "group_id": group.group_id,
        "label": group.label,
        "parent_group_id": parent.group_id if parent else None,
        "tooltip": group.tooltip,
    }


def _serialize_task(task: BaseOperator) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "operator": task.task_type,
        "owner": task.owner,
        "upstream_task_ids": sorted(task._upstream),
        "downstream_task_ids": sorted(task._downstream),
        "retries": task.retries,
        "retry_delay": _seconds(task.retry_delay),
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_retry_delay": _seconds(task.max_retry_delay),
        "execution_timeout": _seconds(task.execution_timeout),
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "priority_weight": task.priority_weight_total,
        "trigger_rule": task.trigger_rule.value,
        "depends_on_past": task.depends_on_past,
        "doc": task.doc,
        "task_group": task.task_group.group_id if task.task_group else None,
        # Only when set: a DAG that never names a queue keeps the hash it had before queues existed.
        **({"queue": task.queue} if task.queue is not None else {}),
        **({"expand": task.expand_input.to_json()} if isinstance(task, MappedOperator) else {}),
    }


def dag_hash(data: dict[str, Any]) -> str:
    """A short digest of serialized data, to skip writing unchanged DAGs."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SerializedTask:
    """A task as the scheduler sees it (``priority_weight`` is already the total)."""

    task_id: str
    operator: str
    owner: str
    upstream_task_ids: tuple[str, ...]
    downstream_task_ids: tuple[str, ...]
    retries: int
    retry_delay: timedelta
    retry_exponential_backoff: bool
    max_retry_delay: timedelta | None
    execution_timeout: timedelta | None
    pool: str
    pool_slots: int
    priority_weight: int
    trigger_rule: str
    depends_on_past: bool
    doc: str | None
    task_group: str | None = None
    dag_id: str = field(default="", compare=False)
    queue: str | None = None
    #: A mapped task's inputs, whose item counts multiply to its instance count: ``{"length": n}`` for
    #: a literal list, ``{"task_id": ..., "key": ...}`` for an upstream's XCom value; None: not mapped.
    expand: tuple[dict[str, Any], ...] | None = field(default=None, hash=False)

    @property
    def is_mapped(self) -> bool:
        return self.expand is not None

    def next_retry_delay(self, try_number: int, logical_date: datetime | None = None) -> timedelta:
        """Same as ``BaseOperator.next_retry_delay``."""
        return compute_retry_delay(
            retry_delay=self.retry_delay,
            try_number=try_number,
            exponential_backoff=self.retry_exponential_backoff,
            max_retry_delay=self.max_retry_delay,
            jitter_key=retry_jitter_key(self.dag_id, self.task_id, logical_date, try_number),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "operator": self.operator,
            "owner": self.owner,
            "upstream_task_ids": list(self.upstream_task_ids),
            "downstream_task_ids": list(self.downstream_task_ids),
            "retries": self.retries,
            "retry_delay": _seconds(self.retry_delay),
            "retry_exponential_backoff": self.retry_exponential_backoff,
            "max_retry_delay": _seconds(self.max_retry_delay),
            "execution_timeout": _seconds(self.execution_timeout),
            "pool": self.pool,
            "pool_slots": self.pool_slots,
            "priority_weight": self.priority_weight,
            "trigger_rule": self.trigger_rule,
            "depends_on_past": self.depends_on_past,
            "doc": self.doc,
            "task_group": self.task_group,
            **({"queue": self.queue} if self.queue is not None else {}),
            **({"expand": list(self.expand)} if self.expand is not None else {}),
        }


@dataclass(frozen=True)
class SerializedTaskGroup:
    """A task group as ``dags show`` draws it: its id, its name, and the group it sits in."""

    group_id: str
    label: str
    parent_group_id: str | None
    tooltip: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "label": self.label,
            "parent_group_id": self.parent_group_id,
            "tooltip": self.tooltip,
        }


@dataclass(frozen=True)
class SerializedDag:
    """A read-only DAG rebuilt from ``serialize_dag`` output; ids instead of task objects."""

    dag_id: str
    fileloc: str
    schedule_text: str | None
    timezone: str
    start_date: datetime | None
    end_date: datetime | None
    catchup: bool
    max_active_runs: int
    max_active_tasks: int
    dagrun_timeout: timedelta | None
    tags: tuple[str, ...]
    description: str | None
    owner: str
    is_paused_upon_creation: bool | None
    tasks: dict[str, SerializedTask]
    params: dict[str, Any] = field(default_factory=dict)
    task_groups: tuple[SerializedTaskGroup, ...] = ()
    #: The kinds of DAG-level callback the DAG has ("failure", "success"): the scheduler requests a
    #: call when a run ends in one of them.
    callbacks: tuple[str, ...] = ()

    @cached_property
    def schedule(self) -> Schedule:
        return make_schedule(self.schedule_text, self.timezone)

    @property
    def timetable(self) -> Schedule:
        """Alias of ``schedule``, the name ``DAG`` uses."""
        return self.schedule

    @property
    def task_ids(self) -> list[str]:
        return list(self.tasks)

    @property
    def roots(self) -> list[str]:
        return [tid for tid, t in self.tasks.items() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[str]:
        return [tid for tid, t in self.tasks.items() if not t.downstream_task_ids]

    @cached_property
    def topological_order(self) -> list[str]:
        return topological_sort({tid: t.downstream_task_ids for tid, t in self.tasks.items()})

    @cached_property
    def topological_index(self) -> dict[str, int]:
        """Each task's position in `topological_order`: the scheduler sorts the few tasks it decides in
        a loop by it, without building this again for the whole DAG every loop."""
        return {task_id: index for index, task_id in enumerate(self.topological_order)}

    def next_retry_delay(
        self, task_id: str, try_number: int, logical_date: datetime | None = None
    ) -> timedelta:
        return self.tasks[task_id].next_retry_delay(try_number, logical_date)

    def next_dagrun_info(
        self, last_interval: DataInterval | None, *, now: datetime | None = None
    ) -> DataInterval | None:
        """The next scheduled interval, as ``DAG.next_dagrun_info``."""
        return self.schedule.next_dagrun_info(
            last_interval,
            start_date=self.start_date,
            end_date=self.end_date,
            catchup=self.catchup,
            now=now,
        )

    def to_dict(self) -> dict[str, Any]:
        """The dict this was deserialized from (same keys, same order)."""
        return {
            "format_version": FORMAT_VERSION,
            "dag_id": self.dag_id,
            "fileloc": self.fileloc,
            "schedule": self.schedule_text,
            "timezone": self.timezone,
            "start_date": _iso(self.start_date),
            "end_date": _iso(self.end_date),
            "catchup": self.catchup,
            "max_active_runs": self.max_active_runs,
            "max_active_tasks": self.max_active_tasks,
            "dagrun_timeout": _seconds(self.dagrun_timeout),
            "tags": list(self.tags),
            "description": self.description,
            "owner": self.owner,
            "is_paused_upon_creation": self.is_paused_upon_creation,
            "params": self.params,
            "task_groups": [group.to_dict() for group in self.task_groups],
            "callbacks": list(self.callbacks),
            "tasks": [self.tasks[tid].to_dict() for tid in sorted(self.tasks)],
        }


def deserialize_dag(data: dict[str, Any]) -> SerializedDag:
    """Rebuild a ``SerializedDag`` from ``serialize_dag`` output (after a JSON round trip)."""
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"serialized DAG format {version!r} is not supported (expected {FORMAT_VERSION})")
    dag_id = data["dag_id"]
    tasks = {t["task_id"]: _deserialize_task(t, dag_id) for t in data["tasks"]}
    return SerializedDag(
        dag_id=dag_id,
        fileloc=data["fileloc"],
        schedule_text=data["schedule"],
        timezone=data["timezone"],
        start_date=_datetime(data["start_date"]),
        end_date=_datetime(data["end_date"]),
        catchup=data["catchup"],
        max_active_runs=data["max_active_runs"],
        max_active_tasks=data["max_active_tasks"],
        dagrun_timeout=_timedelta(data["dagrun_timeout"]),
        tags=tuple(data["tags"]),
        description=data["description"],
        owner=data["owner"],
        is_paused_upon_creation=data["is_paused_upon_creation"],
        tasks=tasks,
        # Rows written before params and groups were serialized have neither key.
        params=data.get("params", {}),
        task_groups=tuple(SerializedTaskGroup(**group) for group in data.get("task_groups", ())),
        callbacks=tuple(data.get("callbacks", ())),
    )


def _deserialize_task(data: dict[str, Any], dag_id: str) -> SerializedTask:
    return SerializedTask(
        task_id=data["task_id"],
        operator=data["operator"],
        owner=data["owner"],
        upstream_task_ids=tuple(data["upstream_task_ids"]),
        downstream_task_ids=tuple(data["downstream_task_ids"]),
        retries=data["retries"],
        retry_delay=timedelta(seconds=data["retry_delay"]),
        retry_exponential_backoff=data["retry_exponential_backoff"],
        max_retry_delay=_timedelta(data["max_retry_delay"]),
        execution_timeout=_timedelta(data["execution_timeout"]),
        pool=data["pool"],
        pool_slots=data["pool_slots"],
        priority_weight=data["priority_weight"],
        trigger_rule=data["trigger_rule"],
        depends_on_past=data["depends_on_past"],
        doc=data["doc"],
        task_group=data.get("task_group"),
        dag_id=dag_id,
        queue=data.get("queue"),
        expand=tuple(data["expand"]) if "expand" in data else None,
    )


def _iso(value: datetime | None) -> str | None:
    return to_utc(value).isoformat() if value is not None else None


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _timedelta(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None
