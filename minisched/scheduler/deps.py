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


class TiRow(NamedTuple):
    id: int
    dag_id: str
    run_id: str
    task_id: str
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

    def add(self, row: TiRow, new_state: str) -> None:
        self.changes.setdefault((row.state, new_state), []).append(row)

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.changes.values())


def decide_run(
    dag: SerializedDag,
    rows: Mapping[str, TiRow],
    candidates: Iterable[str],
    *,
    now: datetime,
    past_ok: Callable[[str], PastVerdict],
    full: bool,
) -> RunDecisions:
    """Decide the candidate task instances of one run, in topological order so that a decision
    (e.g. upstream_failed) cascades to loaded downstream tasks within the same call.

    `full` means `rows` holds every task instance of the run, so tasks gone from the DAG can be
    marked removed and a run where nothing can move any more is reported deadlocked.
    """
    decisions = RunDecisions()
    states: dict[str, str | None] = {task_id: row.state for task_id, row in rows.items()}
    order = {task_id: index for index, task_id in enumerate(dag.topological_order)}
    wanted = set(candidates)
    if full:
        for task_id, row in rows.items():
            if task_id not in dag.tasks and row.state not in FINISHED_TI_STATES:
                decisions.add(row, S.REMOVED)
                states[task_id] = S.REMOVED
    for task_id in sorted(wanted & set(dag.tasks) & set(rows), key=order.__getitem__):
        row = rows[task_id]
        new_state = _decide_one(dag, row, states, now=now, past_ok=past_ok, decisions=decisions)
        if new_state is not None:
            decisions.add(row, new_state)
            states[task_id] = new_state
    if full and decisions.count == 0 and not decisions.waiting_on_past:
        unfinished = [state for state in states.values() if state not in FINISHED_TI_STATES]
        decisions.deadlocked = bool(unfinished) and not any(state in MOVING_STATES for state in unfinished)
    return decisions


def _decide_one(
    dag: SerializedDag,
    row: TiRow,
    states: Mapping[str, str | None],
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
    upstream_states = Counter(states.get(upstream) for upstream in task.upstream_task_ids)
    counts = {str(state): count for state, count in upstream_states.items() if state is not None}
    decision = evaluate_trigger_rule(task.trigger_rule, counts, len(task.upstream_task_ids))
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


def run_outcome(dag: SerializedDag, states: Mapping[str, str | None]) -> DagRunState | None:
    """The final state of a run whose task instances are all finished (None while some are not).

    As Airflow 2: failed if any leaf task failed or is upstream_failed, else success.
    """
    if any(state not in FINISHED_TI_STATES for state in states.values()):
        return None
    leaves = [task_id for task_id in dag.leaves if task_id in states]
    failed = {S.FAILED, S.UPSTREAM_FAILED}
    return DagRunState.FAILED if any(states[task_id] in failed for task_id in leaves) else DagRunState.SUCCESS
