"""Branching operators decide which tasks to skip; the scheduler applies it (tests/cli/test_dags_port.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from minisched import DAG, BranchPythonOperator, EmptyOperator, ShortCircuitOperator, TaskGroup, task
from minisched.authoring import task_context
from minisched.authoring.baseoperator import BaseOperator
from minisched.exceptions import TaskFailure

START = datetime(2024, 1, 1, tzinfo=UTC)


def _skipped_by(op: BaseOperator) -> list[str]:
    context = task_context(
        op, run_id="r", logical_date=START, data_interval_start=START, data_interval_end=START, try_number=1
    )
    op.execute(context)
    ti: Any = context["ti"]
    return list(ti.skipped_task_ids)


def test_branch_skips_other_direct_downstreams_but_not_a_join_after_an_empty_branch() -> None:
    with DAG("b", schedule=None, start_date=START):
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "a")
        a, b, join = EmptyOperator(task_id="a"), EmptyOperator(task_id="b"), EmptyOperator(task_id="join")
        branch >> [a, b, join]
        a >> join
        b >> EmptyOperator(task_id="after_b")
    assert _skipped_by(branch) == ["b"]  # join is downstream of the chosen branch; after_b by trigger rules


def test_branch_to_a_group_follows_its_roots_and_none_skips_everything_direct() -> None:
    with DAG("g", schedule=None, start_date=START):
        with TaskGroup("grp") as grp:
            EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
        other = EmptyOperator(task_id="other")

        @task.branch
        def choose() -> str:
            return "grp"

        chosen = choose()
        chosen >> [grp, other]
        nothing = BranchPythonOperator(task_id="nothing", python_callable=lambda: None)
        nothing >> [grp, other]
    assert _skipped_by(chosen) == ["other"]
    assert _skipped_by(nothing) == ["grp.x", "other"]


def test_branch_refuses_unknown_ids_and_odd_return_values() -> None:
    with DAG("bad", schedule=None, start_date=START):
        unknown = BranchPythonOperator(task_id="unknown", python_callable=lambda: ["nope"])
        odd = BranchPythonOperator(task_id="odd", python_callable=lambda: 3)
    with pytest.raises(TaskFailure, match="returned unknown task id\\(s\\) nope"):
        _skipped_by(unknown)
    with pytest.raises(TaskFailure, match="must return a task id, a list of task ids or None, got 3"):
        _skipped_by(odd)


@pytest.mark.parametrize(("ignore", "expected"), [(True, ["a", "b", "c"]), (False, ["a"])])
def test_short_circuit_skips_all_or_only_direct_downstreams(ignore: bool, expected: list[str]) -> None:
    with DAG("s", schedule=None, start_date=START):
        gate = ShortCircuitOperator(
            task_id="gate", python_callable=lambda: [], ignore_downstream_trigger_rules=ignore
        )
        open_gate = ShortCircuitOperator(task_id="open", python_callable=lambda: "yes")
        gate >> EmptyOperator(task_id="a") >> EmptyOperator(task_id="b") >> EmptyOperator(task_id="c")
        open_gate >> EmptyOperator(task_id="d")
    assert _skipped_by(gate) == expected
    assert _skipped_by(open_gate) == []
