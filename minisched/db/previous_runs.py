"""The run a try's ``prev_*_success`` context values describe, read from ``dag_run`` by the worker."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select

from minisched.db.session import create_session
from minisched.models import DagRun, DagRunState


class PreviousSuccess(NamedTuple):
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    start_date: datetime | None


def previous_success(dag_id: str, logical_date: datetime) -> PreviousSuccess:
    """The latest successful run of ``dag_id`` before ``logical_date`` (all None if there is none),
    as Airflow's ``get_previous_dagrun(state=SUCCESS)``: one short read of its own."""
    with create_session() as session:
        row = session.execute(
            select(DagRun.data_interval_start, DagRun.data_interval_end, DagRun.start_date)
            .where(
                DagRun.dag_id == dag_id,
                DagRun.logical_date < logical_date,
                DagRun.state == DagRunState.SUCCESS,
            )
            .order_by(DagRun.logical_date.desc())
            .limit(1)
        ).first()
    return PreviousSuccess(*row) if row is not None else PreviousSuccess(None, None, None)
