"""Response and request bodies, named and shaped as in Airflow 2.10's stable REST API (v1.yaml)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A request body: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Tag(BaseModel):
    name: str


class ScheduleInterval(BaseModel):
    type: str = Field(serialization_alias="__type")
    value: str | None = None
    days: int | None = None
    seconds: int | None = None
    microseconds: int | None = None


class DAG(BaseModel):
    dag_id: str
    dag_display_name: str
    root_dag_id: str | None = None
    is_paused: bool
    is_active: bool
    is_subdag: bool = False
    last_parsed_time: datetime | None
    last_pickled: datetime | None = None
    last_expired: datetime | None = None
    scheduler_lock: bool | None = None
    pickle_id: str | None = None
    default_view: str = "grid"
    fileloc: str
    file_token: str
    owners: list[str]
    description: str | None
    schedule_interval: ScheduleInterval | None
    timetable_description: str | None
    tags: list[Tag]
    max_active_tasks: int
    max_active_runs: int
    has_task_concurrency_limits: bool = False
    has_import_errors: bool
    next_dagrun: datetime | None
    next_dagrun_data_interval_start: datetime | None
    next_dagrun_data_interval_end: datetime | None
    next_dagrun_create_after: datetime | None


class DAGCollection(BaseModel):
    dags: list[DAG]
    total_entries: int


class DAGPatch(Strict):
    is_paused: bool


class TimeDelta(BaseModel):
    type: Literal["TimeDelta"] = Field("TimeDelta", serialization_alias="__type")
    days: int
    seconds: int
    microseconds: int


class Task(BaseModel):
    class_ref: dict[str, str]
    task_id: str
    task_display_name: str
    owner: str
    trigger_rule: str
    depends_on_past: bool
    is_mapped: bool = False
    retries: int
    pool: str
    pool_slots: int
    execution_timeout: TimeDelta | None
    retry_delay: TimeDelta | None
    retry_exponential_backoff: bool
    priority_weight: int
    weight_rule: str = "downstream"
    downstream_task_ids: list[str]
    doc_md: str | None


class TaskCollection(BaseModel):
    tasks: list[Task]
    total_entries: int


class DAGRun(BaseModel):
    dag_run_id: str
    dag_id: str
    logical_date: datetime
    execution_date: datetime
    start_date: datetime | None
    end_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    last_scheduling_decision: datetime | None = None
    run_type: str
    state: str
    external_trigger: bool
    conf: dict[str, Any]
    note: str | None = None


class DAGRunCollection(BaseModel):
    dag_runs: list[DAGRun]
    total_entries: int


class TriggerDAGRun(Strict):
    dag_run_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=250,
        pattern=r"^[A-Za-z0-9_.~:+-]+$",
        description="The new run's id (Airflow's allowed pattern); default manual__<logical date>.",
    )
    logical_date: datetime | None = None
    conf: dict[str, Any] | None = None


class ClearDagRun(Strict):
    dry_run: bool = True


class UpdateDagRunState(Strict):
    state: Literal["success", "failed"]


class TaskInstance(BaseModel):
    task_id: str
    task_display_name: str
    dag_id: str
    dag_run_id: str
    execution_date: datetime
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    state: str | None
    try_number: int
    map_index: int = -1
    max_tries: int
    hostname: str
    unixname: str | None = None
    pool: str
    pool_slots: int
    queue: str | None = None
    priority_weight: int
    operator: str | None
    queued_when: datetime | None
    pid: int | None
    note: str | None = None


class TaskInstanceCollection(BaseModel):
    task_instances: list[TaskInstance]
    total_entries: int


class TaskInstanceReference(BaseModel):
    task_id: str
    dag_id: str
    dag_run_id: str
    execution_date: datetime


class TaskInstanceReferenceCollection(BaseModel):
    task_instances: list[TaskInstanceReference]


class ClearTaskInstances(Strict):
    dry_run: bool = True
    task_ids: list[str] | None = Field(default=None, min_length=1)
    dag_run_id: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_failed: bool = True
    include_downstream: bool = False


class UpdateTaskInstance(Strict):
    dry_run: bool = False
    new_state: Literal["success", "failed"]


class InstanceLog(BaseModel):
    continuation_token: str
    content: str


class Pool(BaseModel):
    name: str
    slots: int
    occupied_slots: int
    running_slots: int
    queued_slots: int
    scheduled_slots: int = 0
    deferred_slots: int = 0
    open_slots: int
    description: str | None
    include_deferred: bool = False


class PoolCollection(BaseModel):
    pools: list[Pool]
    total_entries: int


class PoolBody(Strict):
    name: str = Field(min_length=1, max_length=256)
    slots: int = Field(ge=0, le=2**31 - 1)
    description: str | None = None
    include_deferred: bool = False


class PoolPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    slots: int | None = Field(default=None, ge=0, le=2**31 - 1)
    description: str | None = None
    include_deferred: bool = False


class DagImportError(BaseModel):
    import_error_id: int
    timestamp: datetime
    filename: str
    stack_trace: str


class ImportErrorCollection(BaseModel):
    import_errors: list[DagImportError]
    total_entries: int


class EventLog(BaseModel):
    event_log_id: int
    when: datetime
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None = None
    try_number: int | None
    event: str
    execution_date: datetime | None = None
    owner: str | None
    extra: str | None


class EventLogCollection(BaseModel):
    event_logs: list[EventLog]
    total_entries: int


class HealthStatus(BaseModel):
    status: Literal["healthy", "unhealthy"]


class SchedulerStatus(HealthStatus):
    latest_scheduler_heartbeat: datetime | None


class HealthInfo(BaseModel):
    metadatabase: HealthStatus
    scheduler: SchedulerStatus


class VersionInfo(BaseModel):
    version: str
    git_version: str | None = None


class ConnectionOut(BaseModel):
    """A connection as the API shows it: never its password; secret-looking extras masked."""

    connection_id: str
    conn_type: str
    description: str | None
    host: str | None
    login: str | None
    schema_: str | None = Field(serialization_alias="schema")
    port: int | None
    extra: str | None


class ConnectionCollection(BaseModel):
    connections: list[ConnectionOut]
    total_entries: int


class ConnectionPatch(Strict):
    """What a PATCH changes: only the fields given (or named by `update_mask`); the rest stay stored."""

    connection_id: str | None = Field(default=None, min_length=1, max_length=250)
    conn_type: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = None
    host: str | None = None
    login: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    port: int | None = Field(default=None, ge=0, le=65535)
    password: str | None = None
    extra: str | None = None


class ConnectionIn(ConnectionPatch):
    """A new connection: the fields of a PATCH, with the id and the type required."""

    connection_id: str = Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.\-]+$")
    conn_type: str = Field(min_length=1, max_length=500)


class VariableOut(BaseModel):
    key: str
    value: str | None
    description: str | None


class VariableCollection(BaseModel):
    variables: list[VariableOut]
    total_entries: int


class VariableIn(Strict):
    key: str = Field(min_length=1, max_length=250)
    value: str
    description: str | None = None


class XComEntry(BaseModel):
    key: str
    timestamp: datetime
    map_index: int
    task_id: str
    dag_id: str
    run_id: str
    value: str | None = None


class XComCollection(BaseModel):
    xcom_entries: list[XComEntry]
    total_entries: int
