"""The worker's claim logic on Celery's in-memory broker, in this process: one try, many messages.

The scheduler loop queues the try and publishes it; a Celery worker (a thread, solo pool) consumes the
messages. Only the compare-and-set decides whether a message runs its try: a duplicate, a withdrawn
try or a stale try number is acknowledged and dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import update

from minisched.scheduler.executors.base import TryRequest
from tests.celery.helpers import token_counts, token_dag, unique
from tests.conftest import BACKENDS, Env
from tests.scheduler.helpers import log_rows, task_instances, wait_until

pytest.importorskip("celery")
from kombu.transport import memory  # Celery's dependency: after the skip above

#: Seconds the in-memory worker's loop waits for a message before it checks for shutdown.
DRAIN_WAIT = 0.1


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The claim logic is plain SQL: both backends (only the celery *executor* insists on PostgreSQL)."""
    return str(request.param)


class _Publisher:
    """The scheduler's side: a CeleryExecutor on the in-memory broker that remembers what it sent."""

    def __init__(self, queue: str) -> None:
        from minisched.scheduler.executors.celery_executor import CeleryExecutor

        self.executor = CeleryExecutor(1, broker_url="memory://", default_queue=queue, queued_timeout=600)
        self.sent: list[TryRequest] = []
        original = self.executor.publish

        def publish(tries: Sequence[TryRequest]) -> None:
            self.sent.extend(tries)
            original(tries)

        self.executor.publish = publish  # type: ignore[method-assign]


@pytest.fixture
def queued_try(env: Env, tmp_path: Path) -> Iterator[tuple[_Publisher, TryRequest, Path]]:
    """A run whose one try the scheduler loop queued and published, then withdrew at its shutdown."""
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions

    tokens = tmp_path / "tokens.txt"
    env.write_dag(
        "claims.py",
        token_dag(
            "claims",
            tokens,
            """
            with DAG("claims", schedule=None, start_date=START):
                PythonOperator(task_id="only", python_callable=mark)
            """,
        ),
    )
    assert env.run_cli("dags", "list").exit_code == 0
    assert env.run_cli("dags", "trigger", "claims").exit_code == 0
    publisher = _Publisher(unique("q"))
    options = SchedulerOptions(
        logs_folder=env.logs_folder, dags_folder=env.dags_folder, num_runs=5, handle_signals=False
    )
    SchedulerLoop(publisher.executor, options).run()
    (request,) = publisher.sent
    yield publisher, request, tokens


class QuickMemory(memory.Transport):  # type: ignore[misc]
    """Celery's in-memory broker (same global state as `memory://`) whose worker loop waits 0.1 s for a
    message instead of 2 s: its shutdown, which waits for that loop, takes a moment instead of seconds."""

    polling_interval = 0.01

    def drain_events(self, connection: object, timeout: float | None = None) -> object:
        return super().drain_events(connection, timeout=min(timeout or DRAIN_WAIT, DRAIN_WAIT))


@contextlib.contextmanager
def _worker(env: Env, queue: str) -> Iterator[None]:
    from celery.contrib.testing.worker import start_worker

    from minisched.db.session import create_session
    from minisched.models.job import CELERY_WORKER_JOB_TYPE
    from minisched.models.types import utcnow
    from minisched.scheduler import job as jobs
    from minisched.scheduler.executors.celery_messages import TASK_NAME, make_app
    from minisched.workers import celery_worker

    with create_session() as session:
        job_id = jobs.register_job(session=session, now=utcnow(), job_type=CELERY_WORKER_JOB_TYPE, host="mem")
    celery_worker._context = celery_worker.WorkerContext(
        name="mem", job_id=job_id, logs_folder=env.home / "worker-logs", broker_url="memory://"
    )
    app = make_app("memory://", default_queue=queue)
    app.conf.broker_transport = f"{__name__}:QuickMemory"
    app.task(name=TASK_NAME, acks_late=True)(celery_worker.run_message)
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, queues=[queue]):
            yield
    finally:
        celery_worker._context.close()
        celery_worker._context = None


def _set_try(request: TryRequest, *, state: str, try_number: int, job_id: int | None = None) -> None:
    """The try's row as if `job_id` (default: the job the message names) had claimed it."""
    from minisched.db.session import create_session
    from minisched.models import TaskInstance

    claimer = request.claimed_by_job_id if job_id is None else job_id
    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.id == request.ti_id)
            .values(state=state, try_number=try_number, queued_by_job_id=claimer)
        )


def _other_job() -> int:
    from minisched.db.session import create_session
    from minisched.models.types import utcnow
    from minisched.scheduler import job as jobs

    with create_session() as session:
        return jobs.register_job(session=session, now=utcnow())


def _drops(caplog: pytest.LogCaptureFixture) -> int:
    return sum("message dropped" in record.getMessage() for record in caplog.records)


def _reports(publisher: _Publisher, count: int) -> list[object]:
    seen: list[object] = []

    def arrived() -> bool:
        seen.extend(publisher.executor.poll(0.05))
        return len(seen) >= count

    wait_until(arrived, timeout=60, message=f"{count} finished report(s)")
    return seen


def test_withdrawn_try_is_dropped_by_the_worker(
    env: Env, queued_try: tuple[_Publisher, TryRequest, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minisched.workers")
    publisher, _, tokens = queued_try
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number) == ("scheduled", 0), "the loop's shutdown withdrew the unstarted try"
    queue = publisher.executor.default_queue
    with _worker(env, queue):
        wait_until(lambda: _drops(caplog) == 1, timeout=30, message="the message to be dropped")
    assert not tokens.exists()
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number) == ("scheduled", 0)


def test_a_try_published_twice_runs_once_and_is_reported(
    env: Env, queued_try: tuple[_Publisher, TryRequest, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minisched.workers")
    publisher, request, tokens = queued_try
    _set_try(request, state="queued", try_number=request.try_number)
    publisher.executor.publish([request])
    publisher.executor.publish([request])
    with _worker(env, publisher.executor.default_queue):
        (result,) = _reports(publisher, 1)
        # Three messages carried this try: the loop's own (withdrawn then queued again) and two copies.
        wait_until(lambda: _drops(caplog) == 2, timeout=30, message="the other copies dropped")
    assert (result.outcome, result.hostname) == ("success", "mem")
    assert token_counts(tokens) == {"only 1": 1}
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number, ti.hostname) == ("success", 1, "mem")
    assert len(log_rows("claims", event="running")) == 1
    assert publisher.executor.running == 0


def test_a_stale_try_number_is_dropped(
    env: Env, queued_try: tuple[_Publisher, TryRequest, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minisched.workers")
    publisher, request, tokens = queued_try
    _set_try(request, state="queued", try_number=request.try_number + 1)  # cleared and queued again since
    publisher.executor.publish([request])
    with _worker(env, publisher.executor.default_queue):
        wait_until(lambda: _drops(caplog) == 2, timeout=30, message="both messages dropped")
    assert not tokens.exists()
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number) == ("queued", request.try_number + 1)


def test_a_message_of_a_job_that_lost_the_try_is_dropped(
    env: Env, queued_try: tuple[_Publisher, TryRequest, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The fence of a remote start: the try was reaped from the job the message names and queued again
    by another job under the same number; the old message starts nothing."""
    caplog.set_level(logging.INFO, logger="minisched.workers")
    publisher, request, tokens = queued_try
    assert request.claimed_by_job_id is not None
    other = _other_job()
    _set_try(request, state="queued", try_number=request.try_number, job_id=other)
    publisher.executor.publish([request])
    with _worker(env, publisher.executor.default_queue):
        wait_until(lambda: _drops(caplog) == 2, timeout=30, message="both messages dropped")
    assert not tokens.exists()
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number, ti.queued_by_job_id) == ("queued", request.try_number, other)


def _commit_then_lose_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's first transaction (its start) commits, then its connection drops before the reply:
    what the worker sees is a transient error, though the start did land."""
    from sqlalchemy.exc import OperationalError

    from minisched.workers import celery_worker

    real = celery_worker.create_session
    calls = 0

    @contextlib.contextmanager
    def create_session() -> Iterator[object]:
        nonlocal calls
        calls += 1
        with real() as session:
            yield session
        if calls == 1:
            lost = ConnectionResetError("server closed the connection unexpectedly")
            raise OperationalError("COMMIT", {}, lost, connection_invalidated=True)

    monkeypatch.setattr(celery_worker, "create_session", create_session)


def test_a_start_whose_commit_reply_was_lost_runs_its_try(
    env: Env,
    queued_try: tuple[_Publisher, TryRequest, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retry finds the row running under this number and this worker's job: its own start, so it
    runs the try; dropping the message would leave the try running under a live worker for ever."""
    caplog.set_level(logging.INFO, logger="minisched")
    publisher, request, tokens = queued_try
    _set_try(request, state="queued", try_number=request.try_number)
    publisher.executor.publish([request])  # behind the loop's own message, which now finds the try queued
    _commit_then_lose_the_reply(monkeypatch)
    with _worker(env, publisher.executor.default_queue):
        (result,) = _reports(publisher, 1)
        wait_until(lambda: _drops(caplog) == 1, timeout=30, message="the second copy dropped")
    assert any("transient database error" in record.getMessage() for record in caplog.records)
    assert result.outcome == "success"
    assert token_counts(tokens) == {"only 1": 1}
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number, ti.hostname) == ("success", 1, "mem")
    assert len(log_rows("claims", event="running")) == 1


def test_a_worker_starting_a_retry_clears_its_failed_trys_values_only_if_it_wins(
    env: Env, queued_try: tuple[_Publisher, TryRequest, Path]
) -> None:
    """The Celery worker records its own start (`claims.start`, through `transitions.start`): the
    values of the task instance's failed try go in the same transaction, and stay if the start loses."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from sqlalchemy import select

    from minisched.db.session import create_session
    from minisched.models import XCom
    from minisched.workers import claims

    _, request, _ = queued_try
    retry = replace(request, try_number=2)
    now = datetime.now(UTC)

    def start_retry(worker_job: int) -> tuple[bool, list[str]]:
        with create_session() as session:
            session.add(
                XCom(
                    dag_id="claims",
                    run_id=request.run_id,
                    task_id="only",
                    key="partial",
                    value=1,
                    timestamp=now,
                )
            )
        with create_session() as session:
            won = claims.start(retry, hostname="mem", pid=4242, job_id=worker_job, session=session, now=now)
        with create_session() as session:
            return won, list(session.execute(select(XCom.key)).scalars())

    _set_try(retry, state="queued", try_number=3)  # a stale message: this retry is not the row's try
    assert start_retry(_other_job()) == (False, ["partial"])
    with create_session() as session:
        session.execute(XCom.__table__.delete())
    _set_try(retry, state="queued", try_number=2)
    assert start_retry(_other_job()) == (True, [])
    (ti,) = task_instances("claims")
    assert (ti.state, ti.try_number, ti.hostname) == ("running", 2, "mem")
