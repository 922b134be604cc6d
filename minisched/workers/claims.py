"""The two try transitions a remote worker makes itself: start (its first act) and finish.

The one seam between a worker and `scheduler.transitions`: a worker changes a task instance through
nothing else. Both are the scheduler's own compare-and-sets keyed on (id, try_number) and the job that
owns the try, so a message delivered twice, a try the scheduler withdrew or recovery already reaped, or
a result reported twice, changes nothing.

Fencing. A local worker checks its scheduler's lease (`executors.lease`) before it runs a task; a
Celery worker on another machine cannot read that lease, and needs none: its start is the compare-and-set
queued -> running on the row still claimed by the scheduler job named in the message. Once that job is
declared dead, recovery withdraws or fails its queued tries under that job's id (on PostgreSQL with the
rows locked), so a late message finds no row to start and is dropped; a start that won first makes the
try the worker's, and recovery of the dead scheduler, keyed on the scheduler's job, leaves it alone.
The same statement hands the try over to the worker's own job, so the recovery of a dead worker reaps
it, and it finishes the try under that job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from minisched.scheduler import transitions
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.executors.base import TryRequest, TryResult, TryStarted


def start(
    request: TryRequest,
    *,
    hostname: str,
    pid: int,
    job_id: int,
    session: Session,
    now: datetime,
    retried: bool = False,
) -> bool:
    """queued -> running for exactly this try, as claimed by the message's scheduler job, and owned by
    this worker's job `job_id` from then on: one statement (`transitions.start_taking_over`). False,
    with nothing changed, when the row was not that queued try any more.

    `retried`: an earlier attempt of this very start ended without an answer, and no other thread of
    this worker holds the try. Its COMMIT may have landed (the connection dropped before the reply):
    the row then runs under this number, owned by `job_id`, and nobody runs it; that is our start, so
    True (dropping the message would leave the try `running` under a live, heart-beating worker)."""
    started = TryStarted(
        request.ti_id, request.try_number, request.dag_id, request.run_id, request.task_id, now, hostname, pid
    )
    if transitions.start_taking_over(
        started, job_id=request.claimed_by_job_id, owner_job_id=job_id, session=session
    ):
        return True
    return retried and transitions.is_running_under_owner(started, owner_job_id=job_id, session=session)


def finish(
    result: TryResult, *, job_id: int, session: Session, cache: DagStructureCache, now: datetime
) -> None:
    """running -> its final state (success, skipped, failed or up_for_retry), as the scheduler records
    results (`transitions.finish`), under this worker's job `job_id`; a try no longer running under
    this number and job (recovery reaped it) is left alone."""
    transitions.finish([result], job_id=job_id, session=session, cache=cache, now=now)
