"""Each transition of a try, called directly on a row put into a given state (both backends).

The factory fixture `rows` writes a DAG, triggers one running run and puts task instances into the
state a test needs; a test then calls exactly one transition and reads the table back. What only real
processes can show (SIGKILL, two schedulers) stays in the real-process tests.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.conftest import Env
from tests.scheduler.helpers import dag_source, log_rows, task_instances

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DAG_ID = "life"


@dataclass
class Rows:
    """The run of DAG `life` and a way to put its task instances into any state."""

    run_id: str
    logs: Path

    def put(
        self,
        task_id: str,
        state: str | None,
        *,
        try_number: int = 0,
        job_id: int | None = None,
        queued_at: datetime | None = None,
    ) -> int:
        from minisched.db.session import create_session
        from minisched.models import TaskInstance

        with create_session() as session:
            return int(
                session.execute(
                    update(TaskInstance)
                    .where(
                        TaskInstance.dag_id == DAG_ID,
                        TaskInstance.run_id == self.run_id,
                        TaskInstance.task_id == task_id,
                    )
                    .values(
                        state=state, try_number=try_number, queued_by_job_id=job_id, queued_dttm=queued_at
                    )
                    .returning(TaskInstance.id)
                ).scalar_one()
            )

    def row(self, task_id: str) -> Any:
        return next(ti for ti in task_instances(DAG_ID, self.run_id) if ti.task_id == task_id)

    def log_path(self, task_id: str, try_number: int) -> Path:
        from minisched.scheduler.executors.logs import log_path_for

        return log_path_for(self.logs, DAG_ID, self.run_id, task_id, try_number)

    def record(
        self, task_id: str, try_number: int, outcome: str | None = None, xcom: dict[str, Any] | None = None
    ) -> None:
        """What a worker writes beside the try's log: when the task began, and how the try ended."""
        from minisched.scheduler.executors.logs import write_try_record

        path = self.log_path(task_id, try_number)
        path.parent.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"start_date": NOW.isoformat(), "pid": 4242}
        if outcome is not None:
            end = (NOW + timedelta(seconds=5)).isoformat()
            record |= {"outcome": outcome, "end_date": end, "hostname": "worker-host", "error": None}
            record["xcom"] = [[key, value] for key, value in (xcom or {}).items()]
        write_try_record(path, record)

    def events(self, task_id: str) -> list[str]:
        return [r.event for r in log_rows(DAG_ID, task_id=task_id, run_id=self.run_id)]


@pytest.fixture
def rows(env: Env) -> Iterator[Rows]:
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import create_session
    from minisched.models import DagRun, Pool
    from minisched.scheduler.manual_runs import trigger_dag

    env.write_dag(
        "life.py",
        dag_source(
            textwrap.dedent(
                """
                with DAG("life", schedule=None, start_date=START, max_active_tasks=3):
                    for name in ("a", "b", "c", "d"):
                        PythonOperator(task_id=name, python_callable=lambda: None,
                                       retries=1, retry_delay=timedelta(seconds=30))
                    PythonOperator(task_id="low", python_callable=lambda: None, priority_weight=1)
                    PythonOperator(task_id="high", python_callable=lambda: None, priority_weight=50)
                    PythonOperator(task_id="pooled_1", python_callable=lambda: None, pool="two")
                    PythonOperator(task_id="pooled_2", python_callable=lambda: None, pool="two")
                    PythonOperator(task_id="pooled_3", python_callable=lambda: None, pool="two")
                    PythonOperator(task_id="big", python_callable=lambda: None, pool="two", pool_slots=3)
                    PythonOperator(task_id="nowhere", python_callable=lambda: None, pool="missing")
                """
            )
        ),
    )
    refresh_dag_folder(env.dags_folder)
    with create_session() as session:
        session.add(Pool(pool="two", slots=2, description="two at a time"))
        run_id = trigger_dag(DAG_ID, session=session, logical_date=NOW)
        session.execute(update(DagRun).where(DagRun.run_id == run_id).values(state="running"))
    yield Rows(run_id, env.logs_folder)


def _in_session(work: Callable[[Any], Any]) -> Any:
    from minisched.db.audit import buffered_events
    from minisched.db.session import create_session

    with create_session() as session, buffered_events(session):
        return work(session)


def _job(*, alive: bool = True, job_type: str = "scheduler") -> int:
    from minisched.models import Job, JobState
    from minisched.scheduler.job import register_job

    def register(session: Any) -> int:
        job_id = register_job(session=session, now=NOW, job_type=job_type)
        if not alive:
            session.execute(update(Job).where(Job.id == job_id).values(state=JobState.FAILED))
        return job_id

    return int(_in_session(register))


def _started(rows: Rows, task_id: str, ti_id: int, try_number: int) -> Any:
    from minisched.scheduler.executors.base import TryStarted

    return TryStarted(ti_id, try_number, DAG_ID, rows.run_id, task_id, NOW, "worker-host", 4242)


def _result(ti_id: int, try_number: int, outcome: str, error: str | None = None) -> Any:
    from minisched.scheduler.executors.base import TryResult

    end = NOW + timedelta(seconds=5)
    return TryResult(ti_id, try_number, outcome, NOW, end, "worker-host", 4242, error)  # type: ignore[arg-type]


def _finish(results: list[Any], job_id: int | None = None) -> Any:
    from minisched.scheduler.dag_cache import DagStructureCache
    from minisched.scheduler.transitions import finish

    cache = DagStructureCache()
    return _in_session(lambda session: finish(results, job_id=job_id, session=session, cache=cache, now=NOW))


# -- claim: scheduled -> queued --------------------------------------------------------------------


def test_claim_queues_a_scheduled_row_and_consumes_a_try_number(rows: Rows) -> None:
    from minisched.scheduler.transitions import claim

    job_id = _job()
    ti_id = rows.put("a", "scheduled", try_number=1)
    won = _in_session(lambda s: claim([rows.row("a")], job_id=job_id, now=NOW, session=s))
    assert won == {ti_id: 2}
    row = rows.row("a")
    assert (row.state, row.try_number, row.queued_by_job_id) == ("queued", 2, job_id)
    assert rows.events("a") == ["queued"]


@pytest.mark.parametrize(("state", "try_number"), [("scheduled", 3), ("queued", 1), ("success", 1)])
def test_claim_leaves_a_row_that_changed_since_it_was_read(rows: Rows, state: str, try_number: int) -> None:
    from minisched.scheduler.transitions import claim

    rows.put("a", "scheduled", try_number=1)
    read = rows.row("a")  # what the critical section saw
    rows.put("a", state, try_number=try_number)  # another process moved it meanwhile
    won = _in_session(lambda s: claim([read], job_id=_job(), now=NOW, session=s))
    assert won == {}
    assert (rows.row("a").state, rows.row("a").try_number) == (state, try_number)
    assert rows.events("a") == []


# -- start: queued -> running ----------------------------------------------------------------------


def test_start_marks_a_queued_try_running_where_it_runs(rows: Rows) -> None:
    from minisched.scheduler.transitions import start

    ti_id = rows.put("a", "queued", try_number=1)
    _in_session(lambda s: start([_started(rows, "a", ti_id, 1)], job_id=None, session=s))
    row = rows.row("a")
    assert (row.state, row.hostname, row.pid, row.start_date) == ("running", "worker-host", 4242, NOW)
    assert rows.events("a") == ["running"]


def test_start_of_a_stale_try_number_changes_nothing(rows: Rows) -> None:
    from minisched.scheduler.transitions import start

    ti_id = rows.put("a", "queued", try_number=2)
    _in_session(lambda s: start([_started(rows, "a", ti_id, 1)], job_id=None, session=s))
    assert rows.row("a").state == "queued"


def test_start_of_a_try_finished_in_the_same_transaction_only_logs(rows: Rows) -> None:
    from minisched.scheduler.transitions import start

    ti_id = rows.put("a", "queued", try_number=1)
    _in_session(lambda s: start([_started(rows, "a", ti_id, 1)], job_id=None, session=s, finished={ti_id}))
    assert (rows.row("a").state, rows.events("a")) == ("queued", ["running"])


def test_start_of_a_retry_clears_the_values_of_its_earlier_tries_only(rows: Rows) -> None:
    from minisched.scheduler.transitions import start

    job_id = _job()
    ids = {t: rows.put(t, "running", try_number=1, job_id=job_id) for t in "abcd"}
    _finish(
        [_pushing(_result(ids[t], 1, "failed"), return_value=t, extra=[t]) for t in "abcd"], job_id=job_id
    )
    for task_id in "abcd":
        rows.put(task_id, "queued", try_number=2, job_id=job_id)
    rows.put("c", "queued", try_number=3, job_id=job_id)  # a stale report: its retry is not this one
    rows.put("d", "queued", try_number=2, job_id=_job())  # claimed again by another job meanwhile
    started = [_started(rows, t, ids[t], 2) for t in "abcd"]
    _in_session(lambda s: start(started, job_id=job_id, session=s, finished={ids["b"]}))
    assert [rows.row(t).state for t in "abcd"] == ["running", "queued", "queued", "queued"]
    # b's result is recorded in the same transaction: finish replaces its values, start leaves them.
    assert _xcom_rows() == [(t, k, v) for t in "bcd" for k, v in (("extra", [t]), ("return_value", t))]


def test_start_of_a_first_try_leaves_the_values_alone(rows: Rows) -> None:
    from minisched.scheduler.transitions import start

    done = rows.put("a", "running", try_number=1)
    _finish([_pushing(_result(done, 1, "success"), return_value=1)])
    ti_id = rows.put("b", "queued", try_number=1)
    _in_session(lambda s: start([_started(rows, "b", ti_id, 1)], job_id=None, session=s))
    assert (rows.row("b").state, _xcom_rows()) == ("running", [("a", "return_value", 1)])


# -- finish: running -> final (retries decided here) -------------------------------------------------


def test_finish_records_success_and_reports_the_finished_task(rows: Rows) -> None:
    ti_id = rows.put("a", "running", try_number=1)
    finished = _finish([_result(ti_id, 1, "success")])
    assert finished == {(DAG_ID, rows.run_id): {"a"}}
    row = rows.row("a")
    assert (row.state, row.duration, row.end_date) == ("success", 5.0, NOW + timedelta(seconds=5))
    assert rows.events("a") == ["success"]


def test_finish_of_a_failed_try_with_retries_left_waits_for_the_retry_delay(rows: Rows) -> None:
    ti_id = rows.put("a", "running", try_number=1)
    finished = _finish([_result(ti_id, 1, "failed", "boom")])
    assert finished == {}  # up_for_retry is not final
    row = rows.row("a")
    assert (row.state, row.next_retry_at) == ("up_for_retry", NOW + timedelta(seconds=35))
    assert [(r.event, r.extra) for r in log_rows(DAG_ID, task_id="a")] == [
        ("up_for_retry", '{"error": "boom"}')
    ]


def test_finish_of_the_last_try_fails_the_task(rows: Rows) -> None:
    ti_id = rows.put("a", "running", try_number=2)
    assert _finish([_result(ti_id, 2, "failed")]) == {(DAG_ID, rows.run_id): {"a"}}
    assert rows.row("a").state == "failed"


def test_finish_of_a_try_that_says_no_retry_fails_the_task_with_retries_left(rows: Rows) -> None:
    from dataclasses import replace

    ti_id = rows.put("a", "running", try_number=1)
    result = replace(_result(ti_id, 1, "failed", "bad credentials"), retry=False)
    assert _finish([result]) == {(DAG_ID, rows.run_id): {"a"}}
    assert (rows.row("a").state, rows.events("a")) == ("failed", ["failed"])


def test_finish_of_a_branching_success_skips_the_named_tasks_that_have_not_started(rows: Rows) -> None:
    from dataclasses import replace

    ti_id = rows.put("a", "running", try_number=1)
    rows.put("b", None)
    rows.put("c", "scheduled")
    rows.put("d", "running", try_number=1)
    result = replace(_result(ti_id, 1, "success"), skip_task_ids=("b", "c", "d"))
    assert _finish([result]) == {(DAG_ID, rows.run_id): {"a", "b", "c"}}
    assert [rows.row(t).state for t in "abcd"] == ["success", "skipped", "skipped", "running"]
    assert (rows.events("b"), rows.events("d")) == (["skipped"], [])
    failed_id = rows.put("low", "running", try_number=1)
    rows.put("high", None)
    failed = replace(_result(failed_id, 1, "failed"), skip_task_ids=("high",))
    _finish([failed])
    assert rows.row("high").state is None  # only a success skips


@pytest.mark.parametrize(("state", "try_number"), [("running", 2), ("scheduled", 1), (None, 1)])
def test_finish_ignores_a_stale_report(rows: Rows, state: str | None, try_number: int) -> None:
    ti_id = rows.put("a", state, try_number=try_number)
    assert _finish([_result(ti_id, 1, "success")]) == {}
    assert (rows.row("a").state, rows.events("a")) == (state, [])


@pytest.mark.parametrize("state", ["failed", "success", "skipped"])
def test_a_second_report_of_an_ended_try_writes_nothing_but_names_the_task(rows: Rows, state: str) -> None:
    """A remote worker recorded the try itself; the scheduler's copy of the report only tells it which
    downstream tasks to look at now."""
    scheduler, worker = _job(), _job()
    ti_id = rows.put("a", state, try_number=1, job_id=worker)  # the worker took the try over at its start
    assert _finish([_result(ti_id, 1, "success")], job_id=scheduler) == {(DAG_ID, rows.run_id): {"a"}}
    assert (rows.row("a").state, rows.events("a")) == (state, [])


def test_finish_ignores_a_report_from_a_job_that_lost_the_try(rows: Rows) -> None:
    loser, winner = _job(), _job()
    ti_id = rows.put("a", "queued", try_number=1, job_id=winner)  # reaped, withdrawn, claimed again
    assert _finish([_result(ti_id, 1, "failed")], job_id=loser) == {}
    assert (rows.row("a").state, rows.events("a")) == ("queued", [])


def test_finish_of_a_try_its_worker_did_not_start_withdraws_it(rows: Rows) -> None:
    job_id = _job()
    ti_id = rows.put("a", "running", try_number=2, job_id=job_id)
    assert _finish([_result(ti_id, 2, "not_started")], job_id=job_id) == {}
    a = rows.row("a")
    assert (a.state, a.try_number, a.queued_by_job_id, rows.events("a")) == (
        "scheduled",
        1,
        None,
        ["scheduled"],
    )


def _xcom_rows() -> list[tuple[str, str, Any]]:
    from minisched.db.session import create_session
    from minisched.models.xcom import XCom

    with create_session() as session:
        found = session.execute(select(XCom.task_id, XCom.key, XCom.value).order_by(XCom.task_id, XCom.key))
        return [tuple(row) for row in found]


def _pushing(result: Any, **values: Any) -> Any:
    from dataclasses import replace

    return replace(result, xcom=tuple(values.items()))


def test_finish_stores_the_values_a_try_pushed_once_even_if_reported_twice(rows: Rows) -> None:
    ti_id = rows.put("a", "running", try_number=1)
    result = _pushing(_result(ti_id, 1, "success"), return_value=[1, 2])
    assert _finish([result, result]) == {(DAG_ID, rows.run_id): {"a"}}
    _finish([result])  # a second report of an ended try still names it (its downstream is looked at)
    assert (_xcom_rows(), rows.events("a")) == ([("a", "return_value", [1, 2])], ["success"])


@pytest.mark.parametrize(("state", "try_number"), [("running", 2), ("scheduled", 1), ("success", 1)])
def test_finish_of_a_stale_report_stores_no_xcom(rows: Rows, state: str, try_number: int) -> None:
    ti_id = rows.put("a", state, try_number=try_number)
    _finish([_pushing(_result(ti_id, 1, "success"), return_value="stale")])
    assert rows.row("a").state == state
    assert _xcom_rows() == []


def test_finish_of_a_try_its_worker_did_not_start_stores_no_xcom(rows: Rows) -> None:
    job_id = _job()
    first_id = rows.put("a", "running", try_number=1, job_id=job_id)
    _finish([_pushing(_result(first_id, 1, "failed"), first="kept")], job_id=job_id)
    ti_id = rows.put("a", "running", try_number=2, job_id=job_id)
    result = _pushing(_result(ti_id, 2, "not_started"), return_value="never")
    assert _finish([result], job_id=job_id) == {}
    assert rows.row("a").state == "scheduled"
    assert _xcom_rows() == [("a", "first", "kept")]  # the earlier try's values are not cleared either


# -- withdraw: queued -> scheduled -----------------------------------------------------------------


def test_withdraw_gives_a_never_started_try_its_number_back(rows: Rows) -> None:
    from minisched.scheduler.executors.base import TryRequest
    from minisched.scheduler.transitions import withdraw

    mine, other = _job(), _job()
    tries = {
        "a": ("queued", 2, mine),
        "b": ("running", 1, mine),
        "c": ("queued", 1, other),
        "d": ("queued", 3, mine),
    }
    ids = {
        task_id: rows.put(task_id, state, try_number=n, job_id=job)
        for task_id, (state, n, job) in tries.items()
    }
    asked = {"a": 2, "b": 1, "c": 1, "d": 2}  # d: a stale try number
    requests = [
        TryRequest(ids[task_id], DAG_ID, rows.run_id, task_id, n, "f.py", "x.log", NOW, None, None)
        for task_id, n in asked.items()
    ]
    _in_session(lambda s: withdraw(requests, job_id=mine, session=s, now=NOW))
    after = {t: (rows.row(t).state, rows.row(t).try_number) for t in "abcd"}
    assert after == {"a": ("scheduled", 1), "b": ("scheduled", 0), "c": ("queued", 1), "d": ("queued", 3)}
    assert rows.row("a").queued_by_job_id is None


# -- reap: orphans of dead jobs -> failed or up_for_retry --------------------------------------------


def _reap(rows: Rows, me: int) -> Any:
    from minisched.scheduler.dag_cache import DagStructureCache
    from minisched.scheduler.executors.logs import log_path_for
    from minisched.scheduler.transitions import reap

    cache = DagStructureCache()
    return _in_session(
        lambda s: reap(
            session=s,
            my_job_id=me,
            now=NOW,
            cache=cache,
            log_path_for=lambda d, r, t, n, i: log_path_for(rows.logs, d, r, t, n, map_index=i),
        )
    )


def test_reap_records_what_really_happened_to_the_tries_of_dead_jobs_only(rows: Rows) -> None:
    me, alive, dead = _job(), _job(), _job(alive=False)
    rows.put("a", "running", try_number=1, job_id=dead)
    rows.record("a", 1)  # began, never finished: retried (retries left)
    rows.put("b", "running", try_number=2, job_id=dead)
    rows.record("b", 2, "success")  # finished before its result was recorded: not run again
    rows.put("c", "queued", try_number=1, job_id=dead)  # never began: back to scheduled, not a try
    rows.put("high", "queued", try_number=1)  # claimed by no job; began; no retries left
    rows.record("high", 1)
    rows.put("d", "running", try_number=1, job_id=alive)
    rows.put("low", "running", try_number=1, job_id=me)
    finished, count = _reap(rows, me)
    assert count == 4 and finished == {(DAG_ID, rows.run_id): {"b", "high"}}
    states = {t: (rows.row(t).state, rows.row(t).try_number) for t in ("a", "b", "c", "high", "d", "low")}
    assert states == {
        "a": ("up_for_retry", 1),
        "b": ("success", 2),
        "c": ("scheduled", 0),
        "high": ("failed", 1),
        "d": ("running", 1),
        "low": ("running", 1),
    }
    assert f"(job {dead}) of this try died" in rows.log_path("c", 1).read_text()


def test_reap_stores_the_values_of_a_try_that_finished_before_its_result_was_recorded(rows: Rows) -> None:
    me, dead = _job(), _job(alive=False)
    rows.put("a", "running", try_number=1, job_id=_job())
    _finish([_pushing(_result(rows.row("a").id, 1, "failed"), return_value="first try")])
    rows.put("a", "running", try_number=2, job_id=dead)
    rows.record("a", 2, "success", xcom={"return_value": {"n": [1, 2]}, "more": "yes"})
    rows.put("b", "running", try_number=1, job_id=dead)
    rows.record("b", 1, "failed", xcom={"partial": 0.5})  # a failed try's pushes are kept, as finish does
    rows.put("c", "running", try_number=1, job_id=dead)
    rows.record("c", 1)  # began, never finished: nothing it pushed is known
    assert _reap(rows, me) == ({(DAG_ID, rows.run_id): {"a"}}, 3)
    assert [rows.row(t).state for t in "abc"] == ["success", "up_for_retry", "up_for_retry"]
    assert _xcom_rows() == [("a", "more", "yes"), ("a", "return_value", {"n": [1, 2]}), ("b", "partial", 0.5)]


def test_reap_fails_the_started_tries_of_a_dead_celery_worker_whose_records_are_elsewhere(rows: Rows) -> None:
    """A worker took the try over only after its own start won, and wrote its record on its own machine:
    with no record here, the try still began, so it is retried (or failed), never handed back."""
    me, worker = _job(), _job(alive=False, job_type="celery_worker")
    rows.put("a", "running", try_number=1, job_id=worker)
    rows.put("high", "running", try_number=1, job_id=worker)  # no retries left
    rows.put("b", "running", try_number=1, job_id=worker)
    rows.record("b", 1, "success")  # a record that is visible still says what happened
    finished, count = _reap(rows, me)
    assert count == 3 and finished == {(DAG_ID, rows.run_id): {"b", "high"}}
    states = {t: (rows.row(t).state, rows.row(t).try_number) for t in ("a", "high", "b")}
    assert states == {"a": ("up_for_retry", 1), "high": ("failed", 1), "b": ("success", 1)}
    assert (
        f"The worker (job {worker}) of this try died before it finished" in rows.log_path("a", 1).read_text()
    )


def test_reap_ignores_a_record_older_than_the_claim(rows: Rows) -> None:
    me, dead = _job(), _job(alive=False)
    rows.put("b", "queued", try_number=1, job_id=dead, queued_at=NOW + timedelta(minutes=5))
    rows.record("b", 1, "success")  # from a previous life of this run (e.g. a replaced `dags test`)
    assert _reap(rows, me) == ({}, 1)
    assert (rows.row("b").state, rows.row("b").try_number) == ("scheduled", 0)


def test_recovery_declares_a_silent_job_dead_then_reaps_its_tries(rows: Rows) -> None:
    from minisched.models import Job, JobState
    from minisched.scheduler.dag_cache import DagStructureCache
    from minisched.scheduler.executors.logs import log_path_for
    from minisched.scheduler.recovery import recover_orphans

    me, silent = _job(), _job()
    _in_session(
        lambda s: s.execute(
            update(Job).where(Job.id == silent).values(latest_heartbeat=NOW - timedelta(seconds=120))
        )
    )
    rows.put("a", "running", try_number=2, job_id=silent)
    rows.record("a", 2)
    cache = DagStructureCache()
    finished = _in_session(
        lambda s: recover_orphans(
            session=s,
            my_job_id=me,
            threshold=60,
            now=NOW,
            cache=cache,
            log_path_for=lambda d, r, t, n, i: log_path_for(rows.logs, d, r, t, n, map_index=i),
        )
    )
    assert finished == {(DAG_ID, rows.run_id): {"a"}}
    states = _in_session(lambda s: dict(s.execute(select(Job.id, Job.state)).all()))
    assert (states[silent], states[me]) == (JobState.FAILED, JobState.RUNNING)
    assert [r.event for r in log_rows(DAG_ID)] == ["failed"]


# -- the critical section: which scheduled rows may be claimed -----------------------------------------


def _queue(*, capacity: int = 100) -> list[str]:
    from minisched.db.session import is_postgresql
    from minisched.scheduler.transitions import queue_scheduled

    job_id = _job()
    lock_rows = is_postgresql()
    queued = _in_session(
        lambda s: queue_scheduled(session=s, job_id=job_id, capacity=capacity, now=NOW, lock_rows=lock_rows)
    )
    return [q.task_id for q in queued]


def test_queue_takes_the_highest_priority_first_within_capacity(rows: Rows) -> None:
    rows.put("low", "scheduled")
    rows.put("high", "scheduled")
    assert _queue(capacity=1) == ["high"]
    assert _queue(capacity=1) == ["low"]


def test_queue_fills_a_pool_and_never_overfills_it(rows: Rows) -> None:
    for task_id in ("pooled_1", "pooled_2", "pooled_3"):
        rows.put(task_id, "scheduled")
    assert sorted(_queue()) == ["pooled_1", "pooled_2"]
    assert _queue() == []
    rows.put("pooled_1", "success")  # a slot frees
    assert _queue() == ["pooled_3"]


def test_queue_respects_max_active_tasks(rows: Rows) -> None:
    rows.put("a", "running", try_number=1)
    for task_id in ("b", "c", "d"):
        rows.put(task_id, "scheduled")
    assert len(_queue()) == 2  # max_active_tasks=3, one already running


def test_queue_skips_missing_and_too_small_pools_without_starving_others(rows: Rows) -> None:
    rows.put("nowhere", "scheduled")
    rows.put("big", "scheduled")
    rows.put("low", "scheduled")
    assert _queue(capacity=1) == ["low"]
    assert {t: rows.row(t).state for t in ("nowhere", "big")} == {"nowhere": "scheduled", "big": "scheduled"}
