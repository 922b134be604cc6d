"""One scheduling pass over running dag runs: load task instances, decide, write the changes in bulk.

A full pass looks at every task instance of a run; a partial pass only at the downstream tasks of
what just changed (and their upstreams). The number of statements is bounded either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.db.audit import record_events, ti_event
from minisched.models import RunKey, TaskInstanceState
from minisched.models.state import FINISHED_TI_STATES
from minisched.scheduler import statements as sql
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.dagruns import ti_values
from minisched.scheduler.deps import PastVerdict, TiKey, TiRow, decide_run
from minisched.scheduler.expansion import expand

S = TaskInstanceState
_TERMINAL_DECISIONS = frozenset({S.UPSTREAM_FAILED, S.SKIPPED, S.REMOVED})


@dataclass
class PassResult:
    """What a scheduling pass changed: runs to check for completion, and tasks whose state changed."""

    touched_runs: set[RunKey] = field(default_factory=set)
    changed_tasks: dict[RunKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    deadlocked_runs: set[RunKey] = field(default_factory=set)
    scheduled: int = 0
    next_retry_at: datetime | None = None
    #: Runs in which a task instance was just scheduled (so they cannot have ended).
    progressing_runs: set[RunKey] = field(default_factory=set)


def load_task_instances(
    *, session: Session, full_runs: Iterable[RunKey], partial: Mapping[RunKey, set[str]]
) -> dict[RunKey, dict[TiKey, TiRow]]:
    """Task instances of running runs: all of `full_runs`, and the named tasks of `partial` runs."""
    full = sorted(set(full_runs))
    wanted = sorted((d, r, t) for (d, r), tasks in partial.items() if (d, r) not in full for t in tasks)
    loaded: dict[RunKey, dict[TiKey, TiRow]] = defaultdict(dict)
    if not full and not wanted:
        return loaded
    params: dict[str, Any] = {}
    statement = sql.task_instances(bool(full), bool(wanted))
    if full:
        params["runs"] = full
    if wanted and not full and len({(d, r) for d, r, _ in wanted}) == 1:
        statement = sql.TIS_OF_RUN  # the same rows, one run's tasks: what a chain's loop asks for
        params = {"dag_id": wanted[0][0], "run_id": wanted[0][1], "task_ids": [t for _, _, t in wanted]}
    elif wanted:
        params["tis"] = wanted
    for row in session.execute(statement, params):
        ti = TiRow(*row)
        loaded[(ti.dag_id, ti.run_id)][(ti.task_id, ti.map_index)] = ti
    return loaded


def waiting_retries(*, session: Session, now: datetime) -> tuple[dict[RunKey, set[str]], datetime | None]:
    """up_for_retry task instances whose retry delay has passed, and when the next one falls due."""
    rows = session.execute(sql.WAITING_RETRIES)
    due: dict[RunKey, set[str]] = defaultdict(set)
    upcoming: list[datetime] = []
    for dag_id, run_id, task_id, retry_at in rows:
        if retry_at is None or retry_at <= now:
            due[(dag_id, run_id)].add(task_id)
        else:
            upcoming.append(retry_at)
    return due, min(upcoming, default=None)


def running_runs(*, session: Session, only_runs: Iterable[RunKey] | None = None) -> list[RunKey]:
    """The running runs the scheduler drives, or those among `only_runs`."""
    if only_runs is None:
        rows = session.execute(sql.RUNNING_RUNS)
    else:
        rows = session.execute(sql.RUNNING_RUNS_OF, {"runs": sorted(only_runs)})
    return [(dag_id, run_id) for dag_id, run_id in rows]


def schedule_pass(
    *,
    session: Session,
    cache: DagStructureCache,
    now: datetime,
    full_runs: Iterable[RunKey],
    changed: Mapping[RunKey, set[str]],
    check_retries: bool = True,
) -> PassResult:
    """Decide task instances of running runs and write every state change (plus its log row) in bulk.

    `check_retries` looks for up_for_retry task instances whose delay has passed (the caller knows
    when one can be due); their time is reported as `next_retry_at`.
    """
    full = set(full_runs)
    candidates: dict[RunKey, set[str]] = defaultdict(set)
    result = PassResult()
    if check_retries:
        due, result.next_retry_at = waiting_retries(session=session, now=now)
        for key, task_ids in due.items():
            candidates[key] |= task_ids
    dags = cache.get_many({key[0] for key in (*full, *changed, *candidates)}, session=session)
    for key, task_ids in changed.items():
        dag = dags.get(key[0])
        if dag is not None:
            candidates[key] |= {
                d for t in task_ids if t in dag.tasks for d in dag.tasks[t].downstream_task_ids
            }
    needed = {key: _with_upstreams(dags.get(key[0]), task_ids) for key, task_ids in candidates.items()}
    loaded = load_task_instances(session=session, full_runs=full, partial=needed)
    past = _past_states(loaded, candidates, full, dags, session=session)
    missing: list[dict[str, object]] = []
    merged: dict[tuple[str | None, str], list[TiRow]] = defaultdict(list)
    to_expand: list[TiRow] = []
    to_revise: list[tuple[TiRow, int]] = []
    for key, rows in loaded.items():
        dag = dags.get(key[0])
        if dag is None:
            continue
        is_full = key in full
        present = {task_id for task_id, _ in rows}
        absent = [ti_values(key[0], key[1], dag, t) for t in dag.tasks if t not in present] if is_full else []
        missing.extend(absent)
        decisions = decide_run(
            dag,
            rows,
            present if is_full else candidates.get(key, set()),
            now=now,
            past_ok=partial(_past_ok, past, key),
            full=is_full,
        )
        if decisions.deadlocked and not absent:
            result.deadlocked_runs.add(key)
        to_expand.extend(decisions.to_expand)
        to_revise.extend(decisions.to_revise)
        for transition, changed_rows in decisions.changes.items():
            merged[transition].extend(changed_rows)
            _note(key, transition[1], changed_rows, result)
    _expand(to_expand, to_revise, dags, merged, result, session=session, now=now)
    _apply(merged, session=session, now=now)
    if missing:
        session.execute(sql.INSERT_TIS, missing)
        result.touched_runs.update((str(row["dag_id"]), str(row["run_id"])) for row in missing)
    return result


def _expand(
    placeholders: list[TiRow],
    revisions: list[tuple[TiRow, int]],
    dags: Mapping[str, SerializedDag],
    merged: dict[tuple[str | None, str], list[TiRow]],
    result: PassResult,
    *,
    session: Session,
    now: datetime,
) -> None:
    """Expand the ready mapped placeholders and count again the input of ready cleared instances; the
    state changes go with the other decisions."""
    expansion = expand(placeholders, dags, session=session, now=now, revisions=revisions)
    for state, rows in expansion.ended.items():
        merged[(None, state)].extend(rows)
        for row in rows:
            _note((row.dag_id, row.run_id), state, [row], result)
    for row in expansion.created:
        key = (row.dag_id, row.run_id)
        result.touched_runs.add(key)
        result.progressing_runs.add(key)
        result.scheduled += expansion.counts[row.id]
    if expansion.inserted:
        result.scheduled += expansion.inserted
        result.progressing_runs.update((row.dag_id, row.run_id) for row, _ in revisions)


def _past_ok(past: Mapping[tuple[RunKey, str], PastVerdict], key: RunKey, task_id: str) -> PastVerdict:
    return past.get((key, task_id), True)


def _with_upstreams(dag: SerializedDag | None, task_ids: set[str]) -> set[str]:
    if dag is None:
        return set(task_ids)
    upstreams = {u for t in task_ids if t in dag.tasks for u in dag.tasks[t].upstream_task_ids}
    return task_ids | upstreams


def _note(key: RunKey, new_state: str, rows: list[TiRow], result: PassResult) -> None:
    result.touched_runs.add(key)
    if new_state == S.SCHEDULED:
        result.scheduled += len(rows)
        result.progressing_runs.add(key)
    if new_state in _TERMINAL_DECISIONS:
        result.changed_tasks[key].update(row.task_id for row in rows)


def _apply(merged: Mapping[tuple[str | None, str], list[TiRow]], *, session: Session, now: datetime) -> None:
    """One compare-and-set UPDATE per (old, new) state pair; log rows only for the rows it changed
    (another scheduler may have moved one meanwhile)."""
    events: list[dict[str, object]] = []
    for (old_state, new_state), rows in merged.items():
        statement = sql.decision(old_state is None, new_state in _TERMINAL_DECISIONS)
        params = {"ids": [row.id for row in rows], "old_state": old_state, "new_state": new_state, "now": now}
        changed = set(session.execute(statement, params).scalars())
        events.extend(ti_event(new_state, r, r.try_number, now) for r in rows if r.id in changed)
    record_events(events, session=session)


def _past_states(
    loaded: Mapping[RunKey, Mapping[TiKey, TiRow]],
    candidates: Mapping[RunKey, set[str]],
    full: set[RunKey],
    dags: Mapping[str, SerializedDag],
    *,
    session: Session,
) -> dict[tuple[RunKey, str], PastVerdict]:
    """For depends_on_past candidates: did the same task succeed (or skip) in the previous run? A
    mapped task did only if every instance did."""
    asking: dict[RunKey, set[str]] = defaultdict(set)
    for key, rows in loaded.items():
        dag = dags.get(key[0])
        unstarted = {task_id for (task_id, _), row in rows.items() if row.state is None}
        names = unstarted if key in full else unstarted & candidates.get(key, set())
        for task_id in names:
            task = dag.tasks.get(task_id) if dag is not None else None
            if task is not None and task.depends_on_past:
                asking[key].add(task_id)
    if not asking:
        return {}
    previous = _previous_runs(list(asking), session=session)
    wanted = [
        (d, previous[(d, r)], t) for (d, r), tasks in asking.items() if (d, r) in previous for t in tasks
    ]
    states: dict[tuple[str, str, str], list[str | None]] = defaultdict(list)
    if wanted:
        for d, r, t, state in session.execute(sql.STATES_OF_TIS, {"tis": wanted}):
            states[(d, r, t)].append(state)
    verdict: dict[tuple[RunKey, str], PastVerdict] = {}
    for (dag_id, run_id), tasks in asking.items():
        prev_run = previous.get((dag_id, run_id))
        for task_id in tasks:
            # No previous run, or the task did not exist then: nothing to wait for (as Airflow).
            past = states.get((dag_id, prev_run, task_id), [S.SUCCESS]) if prev_run else [S.SUCCESS]
            verdict[((dag_id, run_id), task_id)] = _combined_verdict([_past_verdict(p) for p in past])
    return verdict


def _combined_verdict(verdicts: list[PastVerdict]) -> PastVerdict:
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _past_verdict(previous_state: str | None) -> PastVerdict:
    """depends_on_past: run after success, skip or removal; wait while unfinished; never after failure."""
    if previous_state in {S.SUCCESS, S.SKIPPED, S.REMOVED}:
        return True
    if previous_state in FINISHED_TI_STATES:
        return False
    return None


def _previous_runs(keys: list[RunKey], *, session: Session) -> dict[RunKey, str]:
    """The run with the latest logical_date before each given run (same DAG)."""
    rows = session.execute(sql.PREVIOUS_RUNS, {"runs": keys})
    return {(d, r): p for d, r, p in rows if p is not None}
