"""What `celery status` and `celery stop` ask: live workers from the database, queues from Celery."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.models import Job, JobState, TaskInstance, TaskInstanceState
from minisched.models.job import CELERY_WORKER_JOB_TYPE
from minisched.scheduler.executors.celery_messages import make_app

#: Seconds to wait for workers to answer a broadcast.
REPLY_TIMEOUT = 1.0


def worker_rows(broker_url: str, *, default_queue: str, session: Session) -> list[dict[str, Any]]:
    """One row per running worker job: its name, pid, queues (from the worker itself, when it answers)
    and the tries it runs now, as `dag_id.task_id/run_id#try`."""
    workers = session.execute(
        select(Job.id, Job.hostname, Job.pid, Job.latest_heartbeat)
        .where(Job.job_type == CELERY_WORKER_JOB_TYPE, Job.state == JobState.RUNNING)
        .order_by(Job.hostname)
    ).all()
    tries: dict[int, list[str]] = defaultdict(list)
    if workers:
        running = session.execute(
            select(
                TaskInstance.queued_by_job_id,
                TaskInstance.dag_id,
                TaskInstance.task_id,
                TaskInstance.run_id,
                TaskInstance.try_number,
            )
            .where(
                TaskInstance.state == TaskInstanceState.RUNNING,
                TaskInstance.queued_by_job_id.in_([w.id for w in workers]),
            )
            .order_by(TaskInstance.dag_id, TaskInstance.task_id)
        )
        for job_id, dag_id, task_id, run_id, try_number in running:
            tries[job_id or 0].append(f"{dag_id}.{task_id}/{run_id}#{try_number}")
    queues = _active_queues(broker_url, default_queue, expected=len(workers)) if workers else {}
    return [
        {
            "worker": worker.hostname,
            "pid": worker.pid,
            "queues": ",".join(queues.get(worker.hostname, [])),
            "latest_heartbeat": worker.latest_heartbeat,
            "running_tries": ", ".join(tries[worker.id]),
        }
        for worker in workers
    ]


def _active_queues(broker_url: str, default_queue: str, *, expected: int) -> dict[str, list[str]]:
    """Waits for `expected` replies (the live worker jobs), or REPLY_TIMEOUT if some never answer."""
    app = make_app(broker_url, default_queue=default_queue)
    try:
        replies = app.control.inspect(timeout=REPLY_TIMEOUT, limit=expected).active_queues() or {}
    finally:
        app.close()
    return {_worker_name(node): sorted(q["name"] for q in found) for node, found in replies.items()}


def live_worker_count(session: Session) -> int:
    """Worker jobs the database holds as running: how many answers a broadcast may wait for."""
    return len(
        session.execute(
            select(Job.id).where(Job.job_type == CELERY_WORKER_JOB_TYPE, Job.state == JobState.RUNNING)
        ).all()
    )


def stop_workers(
    broker_url: str, *, default_queue: str, name: str | None, expected: int | None = None
) -> list[str]:
    """Ask the live workers (or the one called `name`) for a warm shutdown; returns who was asked.
    The ping returns once `expected` workers answered (one for `name`), else after REPLY_TIMEOUT."""
    from minisched.workers.celery_worker import nodename

    app = make_app(broker_url, default_queue=default_queue)
    try:
        destination = [nodename(name)] if name else None
        limit = 1 if name else (expected or None)
        answered = app.control.ping(destination=destination, timeout=REPLY_TIMEOUT, limit=limit)
        nodes = sorted(node for reply in answered for node in reply)
        if nodes:
            app.control.shutdown(destination=nodes)
    finally:
        app.close()
    return [_worker_name(node) for node in nodes]


def _worker_name(node: str) -> str:
    return node.split("@", 1)[1] if node.startswith("minisched@") else node
