"""Ending dag runs: success or failed once every task instance is finished, failed when deadlocked."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.orm import Session

from minisched.models import DagRun, DagRunState, TaskInstance
from minisched.models.state import FINISHED_TI_STATES
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.deps import run_outcome

log = logging.getLogger(__name__)
RunKey = tuple[str, str]


def finish_runs(
    runs: Iterable[RunKey],
    *,
    session: Session,
    cache: DagStructureCache,
    now: datetime,
    deadlocked: Iterable[RunKey] = (),
) -> dict[RunKey, str]:
    """Set the final state of those `runs` that are done; `deadlocked` runs fail. Returns what ended."""
    keys = sorted(set(runs))
    outcomes: dict[RunKey, str] = {key: DagRunState.FAILED for key in deadlocked}
    for key in outcomes:
        log.warning(
            "dag run %s of %s is deadlocked: no task instance can run any more; failing it", *key[::-1]
        )
    done = _runs_without_unfinished_tis([k for k in keys if k not in outcomes], session=session)
    if done:
        states: dict[RunKey, dict[str, str | None]] = defaultdict(dict)
        rows = session.execute(
            select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state).where(
                tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(done)
            )
        )
        for dag_id, run_id, task_id, state in rows:
            states[(dag_id, run_id)][task_id] = state
        dags = cache.get_many({key[0] for key in done}, session=session)
        for key in done:
            dag = dags.get(key[0])
            outcome = run_outcome(dag, states[key]) if dag is not None else DagRunState.FAILED
            if outcome is not None:
                outcomes[key] = outcome
    _write(outcomes, session=session, now=now)
    return outcomes


def _runs_without_unfinished_tis(keys: list[RunKey], *, session: Session) -> list[RunKey]:
    """Running runs with no unfinished task instance; NOT EXISTS stops at the first unfinished one."""
    if not keys:
        return []
    unfinished = (
        select(TaskInstance.id)
        .where(
            TaskInstance.dag_id == DagRun.dag_id,
            TaskInstance.run_id == DagRun.run_id,
            or_(TaskInstance.state.is_(None), TaskInstance.state.not_in(list(FINISHED_TI_STATES))),
        )
        .exists()
    )
    rows = session.execute(
        select(DagRun.dag_id, DagRun.run_id).where(
            tuple_(DagRun.dag_id, DagRun.run_id).in_(keys), DagRun.state == DagRunState.RUNNING, ~unfinished
        )
    )
    return [(dag_id, run_id) for dag_id, run_id in rows]


def _write(outcomes: dict[RunKey, str], *, session: Session, now: datetime) -> None:
    by_state: dict[str, list[RunKey]] = defaultdict(list)
    for key, state in outcomes.items():
        by_state[state].append(key)
    for state, keys in by_state.items():
        session.execute(
            update(DagRun)
            .where(tuple_(DagRun.dag_id, DagRun.run_id).in_(keys), DagRun.state == DagRunState.RUNNING)
            .values(state=state, end_date=now)
            .execution_options(synchronize_session=False)
        )
