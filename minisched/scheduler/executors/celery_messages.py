"""What the scheduler and the Celery workers say to each other: the app, the try message, the reports.

A message carries one try, `(ti id, try_number)` plus what running it needs, under a Celery task id
derived from that pair, so the same try always travels under the same id. Results do not travel back
through Celery (no result backend): the worker writes them to the metadata database itself, and pushes
a small report onto its scheduler's list in Redis only so that the scheduler reacts at once instead of
at its next sweep. Celery and redis-py are imported here, lazily: `minisched --help` never loads them.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from minisched.exceptions import MinischedError
from minisched.scheduler.executors.base import TryRequest, TryResult

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "minisched.run_try"
#: Reports left unread (their scheduler died) expire from Redis after this many seconds.
REPORT_TTL = 86_400
#: Redis (the reports travel through the broker's own server); memory:// for in-process tests.
_BROKER_SCHEMES = ("redis://", "rediss://", "unix://", "memory://")
#: kombu's Redis transport with one client per channel (`celery_redis`), resolved by kombu when used.
REDIS_TRANSPORT = "minisched.scheduler.executors.celery_redis:Transport"
_DATETIME_FIELDS = ("logical_date", "data_interval_start", "data_interval_end")


def require_celery_setup(*, db_url: str, broker_url: str) -> None:
    """One clear error when the Celery executor cannot work here (SQLite, no broker, no package)."""
    if db_url.startswith("sqlite"):
        raise MinischedError(
            "the celery executor needs PostgreSQL: workers on other machines cannot share a SQLite file; "
            "set MINISCHED_DB_URL=postgresql://... or use MINISCHED_EXECUTOR=local"
        )
    if not broker_url:
        raise MinischedError(
            "the celery executor needs a broker: set MINISCHED_CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)"
        )
    if not broker_url.startswith(_BROKER_SCHEMES):
        scheme = broker_url.partition("://")[0]
        raise MinischedError(
            f"unsupported Celery broker {scheme!r} in MINISCHED_CELERY_BROKER_URL: minisched's Celery "
            "executor uses Redis (redis://host:port/db)"
        )
    try:
        import celery  # noqa: F401
    except ImportError:
        raise MinischedError(
            "the celery executor needs Celery and redis-py: pip install 'minisched[celery]'"
        ) from None


def make_app(broker_url: str, *, default_queue: str) -> Celery:
    """The Celery app: late acks and a prefetch of one, so a message is taken only by a free worker
    and given back if that worker dies before it claimed the try."""
    from celery import Celery

    app = Celery("minisched", broker=broker_url, set_as_current=False)
    if broker_url.startswith("redis://"):
        app.conf.broker_transport = REDIS_TRANSPORT  # one Redis client per channel, not one per command
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=False,  # a try whose worker died is recovered from the database
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=default_queue,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        # A broker that is down must not stall the scheduler loop: the queued timeout covers lost tries.
        broker_connection_timeout=2.0,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
    )
    return app


def task_id_for(ti_id: int, try_number: int) -> str:
    return f"minisched-ti{ti_id}-try{try_number}"


def encode_try(request: TryRequest, reply_to: str) -> dict[str, Any]:
    """The message body: JSON only (dates as ISO text), nothing a worker must unpickle."""
    body = asdict(request)
    for name in _DATETIME_FIELDS:
        value = body[name]
        body[name] = value.isoformat() if value is not None else None
    return {"try": body, "reply_to": reply_to}


def decode_try(body: Mapping[str, Any]) -> tuple[TryRequest, str]:
    fields = dict(body["try"])
    for name in _DATETIME_FIELDS:
        value = fields.get(name)
        fields[name] = datetime.fromisoformat(value) if value is not None else None
    return TryRequest(**fields), str(body.get("reply_to") or "")


def started_report(ti_id: int, try_number: int) -> dict[str, Any]:
    return {"kind": "started", "ti_id": ti_id, "try_number": try_number}


def finished_report(result: TryResult) -> dict[str, Any]:
    """Shallow (not `asdict`, which deep-copies every XCom value): json.dumps copies it anyway."""
    body = {f.name: getattr(result, f.name) for f in fields(result)}
    body["start_date"] = result.start_date.isoformat()
    body["end_date"] = result.end_date.isoformat()
    return {"kind": "finished", "result": body}


def result_of(report: Mapping[str, Any]) -> TryResult:
    fields = dict(report["result"])
    fields["start_date"] = datetime.fromisoformat(fields["start_date"])
    fields["end_date"] = datetime.fromisoformat(fields["end_date"])
    fields["skip_task_ids"] = tuple(fields.get("skip_task_ids", ()))
    return TryResult(**fields)


class ReportChannel(Protocol):
    """Where workers tell a scheduler what happened to its tries (the database stays the record)."""

    def push(self, key: str, report: Mapping[str, Any]) -> None: ...

    def pop_all(self, key: str, timeout: float) -> list[dict[str, Any]]:
        """Every report waiting under `key`; waits up to `timeout` seconds for the first one."""
        ...


def report_channel(broker_url: str) -> ReportChannel:
    """Redis lists on the broker's own server; in-process queues for Celery's `memory://` broker."""
    if broker_url.startswith("memory://"):
        return _MEMORY_CHANNEL
    return RedisReports(broker_url)


class RedisReports:
    """One Redis list per scheduler: RPUSH by workers, BLPOP + LPOP by the scheduler."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)

    def push(self, key: str, report: Mapping[str, Any]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(report))
        pipe.expire(key, REPORT_TTL)
        pipe.execute()

    def pop_all(self, key: str, timeout: float) -> list[dict[str, Any]]:
        raw: list[Any] = []
        if timeout > 0:
            first: Any = self._redis.blpop([key], timeout=timeout)
            if first is None:
                return []
            raw.append(first[1])
        rest: Any = self._redis.lpop(key, 10_000)
        raw.extend(rest or [])
        return [json.loads(item) for item in raw]


class MemoryReports:
    """For a scheduler and workers in one process (tests on Celery's in-memory broker)."""

    def __init__(self) -> None:
        self._queues: dict[str, queue.SimpleQueue[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _queue(self, key: str) -> queue.SimpleQueue[dict[str, Any]]:
        with self._lock:
            return self._queues.setdefault(key, queue.SimpleQueue())

    def push(self, key: str, report: Mapping[str, Any]) -> None:
        self._queue(key).put(dict(report))

    def pop_all(self, key: str, timeout: float) -> list[dict[str, Any]]:
        waiting = self._queue(key)
        reports: list[dict[str, Any]] = []
        try:
            reports.append(waiting.get(timeout=timeout) if timeout > 0 else waiting.get_nowait())
        except queue.Empty:
            return []
        while not waiting.empty():
            reports.append(waiting.get_nowait())
        return reports


_MEMORY_CHANNEL = MemoryReports()
