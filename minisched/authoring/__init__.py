"""What DAG files use: DAG, operators, @task, schedules. Pure Python, no database imports."""

from minisched.authoring.baseoperator import BaseOperator, chain
from minisched.authoring.context import build_context, task_context
from minisched.authoring.dag import DAG, collect_dags, current_dag
from minisched.authoring.decorators import task
from minisched.authoring.operators import BashOperator, EmptyOperator, PythonOperator
from minisched.authoring.schedules import DataInterval, Schedule, make_schedule
from minisched.authoring.trigger_rules import TriggerDecision, TriggerRule, evaluate_trigger_rule
from minisched.exceptions import DagDefinitionError, SkipTask, TaskFailure

__all__ = [
    "DAG",
    "BaseOperator",
    "BashOperator",
    "DagDefinitionError",
    "DataInterval",
    "EmptyOperator",
    "PythonOperator",
    "Schedule",
    "SkipTask",
    "TaskFailure",
    "TriggerDecision",
    "TriggerRule",
    "build_context",
    "chain",
    "collect_dags",
    "current_dag",
    "evaluate_trigger_rule",
    "make_schedule",
    "task",
    "task_context",
]
