"""Expanding mapped tasks: a ready placeholder becomes one task instance per item of its input.

A mapped task has one row per run from the start, its placeholder (map_index -1), which trigger rules
decide like any task's. Once it is ready, its instance count is known: the product of its inputs'
lengths (a literal list's, stored in the serialized DAG; an upstream's XCom list, read here). Then
the placeholder becomes instance 0 (keeping its id and its audit trail) and instances 1..n-1 are
inserted, all scheduled: a fixed number of statements for every expansion of a pass. An empty input
skips the task, as in Airflow; an input that is not a list fails it, with the reason in the log.

Clearing a mapped task keeps its instances (and their try history). When cleared instances are ready
again, their input is counted again, as Airflow revises map indexes: instances past the new count
are removed, missing ones are inserted, the others scheduled.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag, SerializedTask
from minisched.db.audit import record_events, ti_event
from minisched.db.session import is_postgresql
from minisched.models import TaskInstance, TaskInstanceState
from minisched.scheduler import statements as sql
from minisched.scheduler.dagruns import ti_values
from minisched.scheduler.deps import TiRow

log = logging.getLogger(__name__)
S = TaskInstanceState
#: Airflow's [core] max_map_length default: a longer input fails the mapped task.
MAX_MAP_LENGTH = 1024

#: (dag_id, run_id, task_id, key) of an upstream value a mapped task is expanded over.
SourceKey = tuple[str, str, str, str]


@dataclass
class Expansion:
    """What expanding some placeholders decided: rows to move to a state (skipped, failed, or, for
    revised instances, scheduled or removed), instances created."""

    ended: dict[str, list[TiRow]] = field(default_factory=lambda: defaultdict(list))
    #: The placeholders expanded (now instance 0 of each), and how many instances each has.
    created: list[TiRow] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    #: Instances a revision added (a cleared mapped task whose input grew).
    inserted: int = 0


def expand(
    rows: Sequence[TiRow],
    dags: Mapping[str, SerializedDag],
    *,
    session: Session,
    now: datetime,
    revisions: Sequence[tuple[TiRow, int]] = (),
) -> Expansion:
    """Expand the ready placeholders `rows`, and revise the ready cleared instances `revisions` (each
    with its task's current instance count); the state changes are left to the caller's
    compare-and-set decisions (returned in `ended`)."""
    result = Expansion()
    if not rows and not revisions:
        return result
    values = _source_values([*rows, *(row for row, _ in revisions)], dags, session=session)
    _revise(revisions, values, dags, result, session=session)
    counts: dict[int, int] = {}
    for row in rows:
        task = dags[row.dag_id].tasks[row.task_id]
        count, problem = instance_count(task, row, values)
        if problem is not None:
            log.warning(
                "mapped task %s of %s (run %s) fails: %s", row.task_id, row.dag_id, row.run_id, problem
            )
            result.ended[S.FAILED].append(row)
        elif count == 0:
            result.ended[S.SKIPPED].append(row)
        else:
            counts[row.id] = count
    if counts:
        result.created = _create_instances(rows, counts, dags, session=session, now=now)
        result.counts = {row.id: counts[row.id] for row in result.created}
    return result


def _revise(
    revisions: Sequence[tuple[TiRow, int]],
    values: Mapping[SourceKey, Any],
    dags: Mapping[str, SerializedDag],
    result: Expansion,
    *,
    session: Session,
) -> None:
    inserts: list[dict[str, Any]] = []
    grown: set[tuple[str, str, str]] = set()
    for row, existing in revisions:
        count, problem = instance_count(dags[row.dag_id].tasks[row.task_id], row, values)
        if problem is not None:
            log.warning(
                "mapped task %s of %s (run %s) fails: %s", row.task_id, row.dag_id, row.run_id, problem
            )
        state = S.FAILED if problem else S.SKIPPED if count == 0 else S.SCHEDULED
        result.ended[S.REMOVED if state == S.SCHEDULED and row.map_index >= count else state].append(row)
        key = (row.dag_id, row.run_id, row.task_id)
        if problem is None and count > existing and key not in grown:
            grown.add(key)
            base = ti_values(row.dag_id, row.run_id, dags[row.dag_id], row.task_id)
            inserts.extend({**base, "map_index": i, "state": S.SCHEDULED} for i in range(existing, count))
    if inserts:
        _insert_missing(inserts, session=session)
        result.inserted = len(inserts)


def _insert_missing(rows: list[dict[str, Any]], *, session: Session) -> None:
    """Insert instances, leaving alone those another scheduler revising the same task inserted first."""
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(TaskInstance).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(TaskInstance).on_conflict_do_nothing(), rows)


def instance_count(
    task: SerializedTask, row: TiRow, values: Mapping[SourceKey, Any]
) -> tuple[int, str | None]:
    """How many instances the mapped task has in `row`'s run, or why it has none that can run."""
    count = 1
    for source in task.expand or ():
        if "length" in source:
            count *= int(source["length"])
            continue
        value = values.get((row.dag_id, row.run_id, source["task_id"], source["key"]))
        if not isinstance(value, list):
            shown = "no value" if value is None else f"a {type(value).__name__}"
            return (
                0,
                f"task {source['task_id']!r} pushed {shown} under {source['key']!r}, not a list to map over",
            )
        count *= len(value)
    if count > MAX_MAP_LENGTH:
        return 0, f"{count} instances is over the limit of {MAX_MAP_LENGTH} (max_map_length)"
    return count, None


def _source_values(
    rows: Sequence[TiRow], dags: Mapping[str, SerializedDag], *, session: Session
) -> dict[SourceKey, Any]:
    """The upstream XCom values the placeholders map over, in one read (a mapped upstream's value is
    the list of its instances' values, in map_index order)."""
    wanted = sorted(
        {
            (row.dag_id, row.run_id, source["task_id"], source["key"])
            for row in rows
            for source in dags[row.dag_id].tasks[row.task_id].expand or ()
            if "task_id" in source
        }
    )
    if not wanted:
        return {}
    found: dict[SourceKey, Any] = {}
    for dag_id, run_id, task_id, map_index, key, value in session.execute(sql.MAP_SOURCES, {"keys": wanted}):
        source = (dag_id, run_id, task_id, key)
        if map_index < 0:
            found[source] = value
        else:
            found.setdefault(source, []).append(value)
    return found


def _create_instances(
    rows: Sequence[TiRow],
    counts: Mapping[int, int],
    dags: Mapping[str, SerializedDag],
    *,
    session: Session,
    now: datetime,
) -> list[TiRow]:
    """Placeholder -> instance 0 (compare-and-set: another scheduler may have expanded it), then one
    bulk insert of the other instances of the placeholders this call won."""
    won = set(session.execute(sql.EXPAND_PLACEHOLDERS, {"ids": sorted(counts)}).scalars())
    expanded = [row for row in rows if row.id in won]
    inserts = [
        {
            **ti_values(row.dag_id, row.run_id, dags[row.dag_id], row.task_id),
            "map_index": index,
            "state": S.SCHEDULED,
        }
        for row in expanded
        for index in range(1, counts[row.id])
    ]
    if inserts:
        session.execute(insert(TaskInstance), inserts)
    record_events(
        (
            ti_event(S.SCHEDULED, row, 0, now, {"map_index": index})
            for row in expanded
            for index in range(counts[row.id])
        ),
        session=session,
    )
    return [row._replace(map_index=0, state=S.SCHEDULED) for row in expanded]
