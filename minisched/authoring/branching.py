"""Branching operators: BranchPythonOperator and ShortCircuitOperator, with Airflow 2.10's rules.

Workers never write to the database, so these operators do not skip tasks themselves: they name
the tasks to skip on the try's ``ti`` (``ti.skip``), the worker reports them with the try's
result, and the scheduler marks them ``skipped`` when it records the success. Trigger rules then
propagate the skips downstream as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from minisched.authoring.operators import PythonOperator
from minisched.exceptions import TaskFailure

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator


class BranchPythonOperator(PythonOperator):
    """Run the callable; the task id(s) it returns run, the task's other direct downstreams are skipped.

    A returned task group id stands for the group's first tasks. A direct downstream that is also
    downstream of a chosen task is not skipped (the "join" after an empty branch), as in Airflow.
    """

    def execute(self, context: dict[str, Any]) -> Any:
        chosen = super().execute(context)
        skip_all_except(self, context, chosen)
        return chosen


class ShortCircuitOperator(PythonOperator):
    """Run the callable; when it returns something falsy, skip what comes after.

    With ``ignore_downstream_trigger_rules=True`` (the default) every task downstream is skipped;
    with False only the direct downstream tasks are, and their trigger rules decide the rest.
    """

    def __init__(self, task_id: str, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.ignore_downstream_trigger_rules = bool(ignore_downstream_trigger_rules)

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        print(f"Condition result is {condition!r}")
        if condition:
            print("Proceeding with downstream tasks...")
            return condition
        if self.ignore_downstream_trigger_rules:
            to_skip = sorted(self.get_flat_relative_ids(upstream=False))
        else:
            to_skip = sorted(self.downstream_task_ids)
        print(f"Skipping downstream tasks: {', '.join(to_skip) or 'none'}")
        context["ti"].skip(to_skip)
        return condition


def skip_all_except(task: BaseOperator, context: dict[str, Any], chosen: object) -> None:
    """Skip ``task``'s direct downstream tasks except the chosen branches (ids, or None for none)."""
    dag = task._require_dag()
    branches = _task_ids(task, chosen)
    unknown = sorted(b for b in branches if b not in dag.task_dict and b not in dag.task_group_dict)
    if unknown:
        raise TaskFailure(
            f"branch callable of {task.task_id!r} returned unknown task id(s) {', '.join(unknown)}; "
            "return ids of tasks (or task groups) of this DAG"
        )
    keep: set[str] = set()
    for branch in branches:
        roots = (
            dag.task_group_dict[branch].roots if branch in dag.task_group_dict else [dag.task_dict[branch]]
        )
        for root in roots:
            keep |= {root.task_id, *root.get_flat_relative_ids(upstream=False)}
    to_skip = sorted(t for t in task.downstream_task_ids if t not in keep)
    print(f"Following branch {sorted(branches)}; skipping {', '.join(to_skip) or 'nothing'}")
    context["ti"].skip(to_skip)


def _task_ids(task: BaseOperator, chosen: object) -> list[str]:
    if chosen is None:
        return []
    if isinstance(chosen, str):
        return [chosen]
    if isinstance(chosen, Iterable) and all(isinstance(item, str) for item in chosen):
        return list(chosen)
    raise TaskFailure(
        f"branch callable of {task.task_id!r} must return a task id, a list of task ids or None, "
        f"got {chosen!r}"
    )
