"""Which task instances may run: trigger rules, depends_on_past and retry timing (pure, no database)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from minisched.authoring.serialize import SerializedDag
from minisched.authoring.trigger_rules import TriggerDecision, evaluate_trigger_rule
from minisched.models.state import FINISHED_TI_STATES, DagRunState, TaskInstanceState

S = TaskInstanceState
#: States in which a task instance is still moving by itself (or will, once its retry is due).
MOVING_STATES = frozenset({S.SCHEDULED, S.QUEUED, S.RUNNING, S.UP_FOR_RETRY})

#: What `past_ok` says of a depends_on_past task: True may run, None wait (the previous try is still
#: unfinished), False never (it ended failed; only clearing it can change that).
PastVerdict = bool | None
#: A task instance within its run: (task_id, map_index); map_index -1 for a task that is not mapped.
TiKey = tuple[str, int]


class TiRow(NamedTuple):
    id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    next_retry_at: datetime | None


@dataclass
class RunDecisions:
    """State changes for one run: (old state, new state) -> task instances."""

    changes: dict[tuple[str | None, str], list[TiRow]] = field(default_factory=dict)
    deadlocked: bool = False
    waiting_on_past: bool = False  # a task waits for its previous run, which is still moving
    #: Mapped tasks' placeholders whose upstreams are done: the scheduler expands them.
    to_expand: list[TiRow] = field(default_factory=list)
    #: Cleared instances of mapped tasks, ready again, with how many instances their task has now:
    #: the scheduler counts the input again (it may have changed) before scheduling them.
    to_revise: list[tuple[TiRow, int]] = field(default_factory=list)

    def add(self, row: TiRow, new_state: str) -> None:
        self.changes.setdefault((row.state, new_state), []).append(row)

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.changes.values())


def decide_run(
    dag: SerializedDag,
    rows: Mapping[TiKey, TiRow],
    candidates: Iterable[str],
    *,
    now: datetime,
    past_ok: Callable[[str], PastVerdict],
    full: bool,
) -> RunDecisions:
    """Decide the task instances of the candidate tasks of one run, in topological order so that a
    decision (e.g. upstream_failed) cascades to loaded downstream tasks within the same call.

    `full` means `rows` holds every task instance of the run, so tasks gone from the DAG can be
    marked removed and a run where nothing can move any more is reported deadlocked. A ready
    placeholder of a mapped task (map_index -1) goes to `to_expand` rather than to a state.
    """
    decisions = RunDecisions()
    states: dict[TiKey, str | None] = {key: row.state for key, row in rows.items()}
    by_task: dict[str, list[TiKey]] = {}
    for key in rows:
        by_task.setdefault(key[0], []).append(key)
    order = dag.topological_index
    if full:
        for key, row in rows.items():
            if key[0] not in dag.tasks and row.state not in FINISHED_TI_STATES:
                decisions.add(row, S.REMOVED)
                states[key] = S.REMOVED
    # Only the candidates are looked at: a chain's loop decides one task of a DAG of any size.
    ready = {task_id for task_id in candidates if task_id in dag.tasks and task_id in by_task}
    for task_id in sorted(ready, key=order.__getitem__):
        upstream = _upstream_states(dag, task_id, states, by_task)
        for key in sorted(by_task[task_id]):
            row = rows[key]
            new_state = _decide_one(dag, row, upstream, now=now, past_ok=past_ok, decisions=decisions)
            ready_mapped = new_state == S.SCHEDULED and row.state is None and dag.tasks[task_id].is_mapped
            if ready_mapped and row.map_index < 0:
                decisions.to_expand.append(row)
                states[key] = S.SCHEDULED  # not finished: its downstream keeps waiting
            elif ready_mapped:
                decisions.to_revise.append((row, len(by_task[task_id])))
                states[key] = S.SCHEDULED
            elif new_state is not None:
                decisions.add(row, new_state)
                states[key] = new_state
    waiting = decisions.waiting_on_past or decisions.to_expand or decisions.to_revise
    if full and decisions.count == 0 and not waiting:
        unfinished = [state for state in states.values() if state not in FINISHED_TI_STATES]
        decisions.deadlocked = bool(unfinished) and not any(state in MOVING_STATES for state in unfinished)
    return decisions


def _upstream_states(
    dag: SerializedDag, task_id: str, states: Mapping[TiKey, str | None], by_task: Mapping[str, list[TiKey]]
) -> list[str | None]:
    """The states of every instance of the task's direct upstreams: a mapped upstream counts each of
    its instances, as Airflow's trigger rules do, except those removed when its input shrank; an
    upstream with no row yet counts as one unstarted."""
    found: list[str | None] = []
    for upstream in dag.tasks[task_id].upstream_task_ids:
        keys = by_task.get(upstream)
        if not keys:
            found.append(None)
            continue
        kept = [states[key] for key in keys if key[1] < 0 or states[key] != S.REMOVED]
        found.extend(kept or [S.REMOVED])
    return found


def _decide_one(
    dag: SerializedDag,
    row: TiRow,
    upstream: list[str | None],
    *,
    now: datetime,
    past_ok: Callable[[str], PastVerdict],
    decisions: RunDecisions,
) -> str | None:
    if row.state == S.UP_FOR_RETRY:
        due = row.next_retry_at is None or row.next_retry_at <= now
        return S.SCHEDULED if due else None
    if row.state is not None:
        return None
    task = dag.tasks[row.task_id]
    counts = {str(state): count for state, count in Counter(upstream).items() if state is not None}
    decision = evaluate_trigger_rule(task.trigger_rule, counts, len(upstream))
    if decision == TriggerDecision.READY:
        if task.depends_on_past:
            verdict = past_ok(row.task_id)
            if verdict is None:
                decisions.waiting_on_past = True
            if not verdict:
                return None
        return S.SCHEDULED
    if decision == TriggerDecision.UPSTREAM_FAILED:
        return S.UPSTREAM_FAILED
    if decision == TriggerDecision.SKIPPED:
        return S.SKIPPED
    return None


def run_outcome(dag: SerializedDag, states: Mapping[TiKey, str | None]) -> DagRunState | None:
    """The final state of a run whose task instances are all finished (None while some are not).

    As Airflow 2: failed if any instance of a leaf task failed or is upstream_failed, else success.
    """
    if any(state not in FINISHED_TI_STATES for state in states.values()):
        return None
    leaves = set(dag.leaves)
    failed = {S.FAILED, S.UPSTREAM_FAILED}
    lost = any(state in failed for (task_id, _), state in states.items() if task_id in leaves)
    return DagRunState.FAILED if lost else DagRunState.SUCCESS
