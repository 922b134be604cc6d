"""What DAG files use: DAG, operators, @task, task groups, params, schedules. No database imports."""

from minisched.authoring.baseoperator import BaseOperator, chain, cross_downstream
from minisched.authoring.branching import BranchPythonOperator, ShortCircuitOperator
from minisched.authoring.context import build_context, get_current_context, task_context
from minisched.authoring.dag import DAG, collect_dags, current_dag
from minisched.authoring.dag_decorator import dag
from minisched.authoring.decorators import task
from minisched.authoring.operators import BashOperator, EmptyOperator, PythonOperator
from minisched.authoring.params import Param
from minisched.authoring.schedules import DataInterval, Schedule, make_schedule
from minisched.authoring.task_group import TaskGroup, task_group
from minisched.authoring.trigger_rules import TriggerDecision, TriggerRule, evaluate_trigger_rule
from minisched.exceptions import DagDefinitionError, FailTask, SkipTask, TaskFailure

__all__ = [
    "DAG",
    "BaseOperator",
    "BashOperator",
    "BranchPythonOperator",
    "DagDefinitionError",
    "DataInterval",
    "EmptyOperator",
    "FailTask",
    "Param",
    "PythonOperator",
    "Schedule",
    "ShortCircuitOperator",
    "SkipTask",
    "TaskFailure",
    "TaskGroup",
    "TriggerDecision",
    "TriggerRule",
    "build_context",
    "chain",
    "collect_dags",
    "cross_downstream",
    "current_dag",
    "dag",
    "evaluate_trigger_rule",
    "get_current_context",
    "make_schedule",
    "task",
    "task_context",
    "task_group",
]
