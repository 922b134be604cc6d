"""The lower-case state strings stored in `dag_run.state` and `task_instance.state`."""

from __future__ import annotations

from enum import StrEnum


class DagRunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class TaskInstanceState(StrEnum):
    """A task instance's state; a new one has none (NULL in the table)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"


class DagRunType(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"


class JobState(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


#: Task instance states after which the try will not change again by itself.
FINISHED_TI_STATES = frozenset(
    {
        TaskInstanceState.SUCCESS,
        TaskInstanceState.FAILED,
        TaskInstanceState.UPSTREAM_FAILED,
        TaskInstanceState.SKIPPED,
        TaskInstanceState.REMOVED,
    }
)
#: States that hold a pool slot and count against max_active_tasks.
ACTIVE_TI_STATES = frozenset({TaskInstanceState.QUEUED, TaskInstanceState.RUNNING})
FINISHED_RUN_STATES = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})
