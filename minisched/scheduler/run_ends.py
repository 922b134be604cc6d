"""Ending dag runs: success or failed once every task instance is finished, failed when deadlocked."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from minisched.models import DagRunState, RunKey
from minisched.scheduler import statements as sql
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.dag_callback_requests import request_dag_callbacks
from minisched.scheduler.deps import TiKey, run_outcome

log = logging.getLogger(__name__)


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
        states: dict[RunKey, dict[TiKey, str | None]] = defaultdict(dict)
        rows = session.execute(sql.STATES_OF_RUNS, {"runs": done})
        for dag_id, run_id, task_id, map_index, state in rows:
            states[(dag_id, run_id)][(task_id, map_index)] = state
        dags = cache.get_many({key[0] for key in done}, session=session)
        for key in done:
            dag = dags.get(key[0])
            outcome = run_outcome(dag, states[key]) if dag is not None else DagRunState.FAILED
            if outcome is not None:
                outcomes[key] = outcome
    ended = _write(outcomes, session=session, now=now)
    request_dag_callbacks(ended, set(deadlocked), session=session, cache=cache, now=now)
    return ended


def finished_states(keys: Iterable[RunKey], *, session: Session) -> dict[RunKey, str]:
    """The final state of those runs that have one."""
    wanted = sorted(keys)
    if not wanted:
        return {}
    rows = session.execute(sql.FINAL_STATES, {"runs": wanted})
    return {(dag_id, run_id): state for dag_id, run_id, state in rows}


def _runs_without_unfinished_tis(keys: list[RunKey], *, session: Session) -> list[RunKey]:
    """Running runs none of whose task instances is unfinished."""
    if not keys:
        return []
    return [(dag_id, run_id) for dag_id, run_id in session.execute(sql.DONE_RUNS, {"runs": keys})]


def _write(outcomes: dict[RunKey, str], *, session: Session, now: datetime) -> dict[RunKey, str]:
    """End the runs; returns those this transaction ended (another scheduler may have been first)."""
    by_state: dict[str, list[RunKey]] = defaultdict(list)
    for key, state in outcomes.items():
        by_state[state].append(key)
    ended: dict[RunKey, str] = {}
    for state, keys in by_state.items():
        rows = session.execute(sql.END_RUNS, {"runs": keys, "state": state, "now": now})
        ended.update({(dag_id, run_id): state for dag_id, run_id in rows})
    return ended
