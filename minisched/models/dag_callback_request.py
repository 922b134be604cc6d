"""`dag_callback_request`: a DAG-level callback owed for a run that just ended.

The scheduler that ends a run writes the request in the same transaction, so a scheduler that dies
right after cannot lose it. A callback process (never the scheduler: callbacks are user code) claims
requests, calls the DAG's callbacks and deletes them; a claim older than the stale limit is taken
again, so a process killed mid-callback is replaced.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, ForeignKeyConstraint, Integer, String, or_
from sqlalchemy.orm import Mapped, mapped_column

from minisched.models.base import ID_LEN, Base
from minisched.models.types import UtcDateTime

#: A claimed request whose process has not deleted it after this long is claimed again.
STALE_CLAIM = timedelta(minutes=5)


class DagCallbackRequest(Base):
    __tablename__ = "dag_callback_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    #: "success" or "failure": which of the DAG's callbacks to call.
    kind: Mapped[str] = mapped_column(String(20))
    #: Airflow's `reason` in the callback's context ("success", "task_failure", ...).
    reason: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: `host:pid` of the process running the callback.
    claimed_by: Mapped[str | None] = mapped_column(String(1000))

    # No unique key on (dag_id, run_id, kind): a run cleared and ended again owes its callback again,
    # even while the first request waits (Airflow calls it at every end).
    __table_args__ = (
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
    )


def claimable(now: datetime) -> ColumnElement[bool]:
    """The requests no live process holds: never claimed, or claimed longer ago than STALE_CLAIM."""
    return or_(DagCallbackRequest.claimed_at.is_(None), DagCallbackRequest.claimed_at < now - STALE_CLAIM)
