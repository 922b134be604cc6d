"""The pure decision step: cascades, removed tasks, retry timing and deadlocks (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from minisched import DAG, BashOperator
from minisched.authoring.serialize import deserialize_dag, serialize_dag
from minisched.scheduler.deps import TiKey, TiRow, decide_run, run_outcome

NOW = datetime(2024, 1, 2, tzinfo=UTC)


def _structure(edges: list[tuple[str, str]], tasks: list[str], **task_args: object):  # type: ignore[no-untyped-def]
    with DAG("d", schedule=None) as dag:
        ops = {t: BashOperator(task_id=t, bash_command="true", **task_args) for t in tasks}  # type: ignore[arg-type]
        for up, down in edges:
            ops[up] >> ops[down]
    return deserialize_dag(serialize_dag(dag))


def _rows(states: dict[str, str | None], retry_at: datetime | None = None) -> dict[TiKey, TiRow]:
    return {
        (task_id, -1): TiRow(i, "d", "r", task_id, -1, state, 1, 0, retry_at)
        for i, (task_id, state) in enumerate(states.items())
    }


def _ids(rows: dict[TiKey, TiRow]) -> set[str]:
    return {task_id for task_id, _ in rows}


def _changes(decisions):  # type: ignore[no-untyped-def]
    return {row.task_id: new for (_, new), rows in decisions.changes.items() for row in rows}


def test_upstream_failed_cascades_down_a_chain_in_one_pass() -> None:
    dag = _structure([("a", "b"), ("b", "c")], ["a", "b", "c"])
    rows = _rows({"a": "failed", "b": None, "c": None})
    decisions = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: True, full=True)
    assert _changes(decisions) == {"b": "upstream_failed", "c": "upstream_failed"}


def test_task_gone_from_the_dag_is_removed_and_counts_as_done() -> None:
    dag = _structure([], ["a"])
    rows = _rows({"a": "success", "old": None})
    decisions = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: True, full=True)
    assert _changes(decisions) == {"old": "removed"}
    assert run_outcome(dag, {("a", -1): "success", ("old", -1): "removed"}) == "success"


def test_retry_waits_for_its_delay() -> None:
    dag = _structure([], ["a"])
    later = _rows({"a": "up_for_retry"}, retry_at=NOW + timedelta(seconds=30))
    assert _changes(decide_run(dag, later, ["a"], now=NOW, past_ok=lambda _: True, full=False)) == {}
    due = _rows({"a": "up_for_retry"}, retry_at=NOW - timedelta(seconds=1))
    assert _changes(decide_run(dag, due, ["a"], now=NOW, past_ok=lambda _: True, full=False)) == {
        "a": "scheduled"
    }


def test_depends_on_past_waits_for_an_unfinished_previous_run_and_deadlocks_after_a_failed_one() -> None:
    dag = _structure([], ["a"], depends_on_past=True)
    rows = _rows({"a": None})
    waiting = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: None, full=True)
    assert waiting.count == 0 and not waiting.deadlocked  # the previous run may still succeed
    never = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: False, full=True)
    assert never.count == 0 and never.deadlocked  # the previous try failed: nothing can ever run
    ready = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: True, full=True)
    assert _changes(ready) == {"a": "scheduled"}


def test_a_moving_task_instance_is_no_deadlock() -> None:
    dag = _structure([], ["a", "b"], depends_on_past=True)
    rows = _rows({"a": None, "b": "running"})
    assert not decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: False, full=True).deadlocked


def test_run_outcome_follows_the_leaves() -> None:
    dag = _structure([("a", "b")], ["a", "b"])
    assert run_outcome(dag, {("a", -1): "success", ("b", -1): None}) is None
    assert run_outcome(dag, {("a", -1): "failed", ("b", -1): "upstream_failed"}) == "failed"
    assert run_outcome(dag, {("a", -1): "skipped", ("b", -1): "skipped"}) == "success"


def _mapped_structure():  # type: ignore[no-untyped-def]
    with DAG("d", schedule=None) as dag:
        mapped = BashOperator.partial(task_id="m").expand(bash_command=["true", "false"])
        mapped >> BashOperator(task_id="after", bash_command="true")
    return deserialize_dag(serialize_dag(dag))


def test_a_ready_mapped_placeholder_is_expanded_not_scheduled() -> None:
    dag = _mapped_structure()
    rows = _rows({"m": None, "after": None})
    decisions = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: True, full=True)
    assert [row.task_id for row in decisions.to_expand] == ["m"]
    assert _changes(decisions) == {} and not decisions.deadlocked


def test_a_downstream_of_a_mapped_task_sees_every_instance() -> None:
    dag = _mapped_structure()
    instances = {
        ("m", i): TiRow(i, "d", "r", "m", i, state, 1, 0, None)
        for i, state in enumerate(["success", "running"])
    }
    rows = {**instances, **{("after", -1): TiRow(9, "d", "r", "after", -1, None, 0, 0, None)}}
    assert _changes(decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: True, full=True)) == {}
    rows[("m", 1)] = rows[("m", 1)]._replace(state="failed")
    decided = decide_run(dag, rows, _ids(rows), now=NOW, past_ok=lambda _: True, full=True)
    assert _changes(decided) == {"after": "upstream_failed"}
    assert run_outcome(dag, {("m", 0): "success", ("m", 1): "failed", ("after", -1): "success"}) == "success"
    assert run_outcome(dag, {("m", 0): "success", ("after", -1): "upstream_failed"}) == "failed"
